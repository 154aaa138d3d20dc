"""Event streams (``t, x, y, p``) as an MMPretrain data set, and the
transforms that turn a stream into ``T x P x H x W`` frames.

An event camera reports, per pixel, each change of log brightness by a
contrast threshold: ``x, y`` (pixel), ``t`` (time, microseconds in most
recordings) and ``p`` (polarity: 1 brighter, 0 darker). The arrays follow
`tonic <https://tonic.readthedocs.io>`_, the neuromorphic data library:
one structured array with fields ``x, y, t, p`` (:data:`EVENTS_DTYPE`),
sorted by ``t``; sensor sizes are ``(W, H, P)``. Frames are binned as
tonic's ``ToFrame`` does (``frames[i, p, y, x]`` counts the events of
slice ``i``), so a model trained on frames from tonic reads ours.

A typical pipeline::

    dict(type='sdt3_mm.LoadEvents', sensor_size=(128, 128, 2)),
    dict(type='sdt3_mm.RandomDropEvents', drop_prob=(0., 0.1)),
    dict(type='sdt3_mm.RandomFlipEvents', prob=0.5, label_map={0: 1, 1: 0}),
    dict(type='sdt3_mm.EventsToFrames', num_frames=8, by='time'),
    dict(type='sdt3_mm.ResizeFrames', scale=(64, 64)),
    dict(type='sdt3_mm.BinarizeFrames'),
    dict(type='PackInputs'),

``PackInputs`` keeps the 4-D frames as they are (``T x P x H x W``), and
:class:`~sdt3_mm.models.FramesDataPreprocessor` batches them as
``B x T x P x H x W``.
"""
import os
import os.path as osp
import re

import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import BaseTransform
from mmpretrain.datasets import CustomDataset

from sdt3_mm.registry import DATASETS, TRANSFORMS

#: tonic's event layout (``tonic.io.events_struct``).
EVENTS_DTYPE = np.dtype([('x', np.int16), ('y', np.int16), ('t', np.int64),
                         ('p', bool)])
_FIELDS = ('x', 'y', 't', 'p')


def _check_sensor_size(owner, sensor_size):
    size = tuple(sensor_size)
    if len(size) != 3 or not all(
            isinstance(s, (int, np.integer)) and s > 0 for s in size):
        raise ValueError(f'{owner}: sensor_size must be (W, H, P), three '
                         f'positive integers, got {sensor_size!r}')
    if size[2] not in (1, 2):
        raise ValueError(f'{owner}: sensor_size P (polarities) must be 1 or '
                         f'2, got {size[2]}')
    return tuple(int(s) for s in size)


def load_events(path):
    """Read the events of one ``.npz`` file.

    The file holds either one structured array ``events`` with fields
    ``x, y, t, p`` (tonic's layout, any integer or bool field types, any
    field order) or four arrays ``x``, ``y``, ``t``, ``p`` of one length.

    Returns:
        np.ndarray: The events as :data:`EVENTS_DTYPE`, in file order.

    Raises:
        ValueError: The file holds neither layout, the arrays differ in
            length, a field is not integer (or bool), polarities other
            than 0 and 1, or coordinates below zero; the message names
            the file.
    """
    with np.load(path, allow_pickle=False) as data:
        keys = set(data.files)
        if 'events' in keys:
            array = data['events']
            names = array.dtype.names or ()
            if not set(_FIELDS) <= set(names):
                raise ValueError(
                    f'{path}: "events" must be a structured array with '
                    f'fields x, y, t, p, got fields {names or array.dtype}')
            fields = {name: array[name] for name in _FIELDS}
        elif set(_FIELDS) <= keys:
            fields = {name: data[name] for name in _FIELDS}
        else:
            raise ValueError(
                f'{path}: expected an array "events" (fields x, y, t, p) or '
                f'arrays "x", "y", "t", "p"; the file has {sorted(keys)}')
    lengths = {name: value.shape for name, value in fields.items()}
    if any(v.ndim != 1
           for v in fields.values()) or len(set(lengths.values())) != 1:
        raise ValueError(f'{path}: x, y, t, p must be 1-D arrays of one '
                         f'length, got shapes {lengths}')
    for name, value in fields.items():
        if not (np.issubdtype(value.dtype, np.integer) or value.dtype == bool):
            raise ValueError(f'{path}: field {name} must hold integers, got '
                             f'{value.dtype}')
    p = fields['p']
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError(f'{path}: polarities must be 0 (darker) and 1 '
                         f'(brighter), got values in {p.min()}..{p.max()} '
                         f'(map -1/1 recordings to 0/1 when writing them)')
    for name in ('x', 'y'):
        if fields[name].size and fields[name].min() < 0:
            raise ValueError(f'{path}: negative {name} coordinate '
                             f'{fields[name].min()}')
    events = np.empty(len(p), EVENTS_DTYPE)
    for name in _FIELDS:
        events[name] = fields[name]
    return events


@DATASETS.register_module()
class EventStreamDataset(CustomDataset):
    """Event recordings, one ``.npz`` file each, as an MMPretrain data set.

    MMPretrain's :class:`~mmpretrain.datasets.CustomDataset` reading
    ``.npz`` files: either a folder per class (``data_prefix/<class>/x.npz``,
    classes in sorted folder order) or an annotation file of lines
    ``<path relative to data_prefix> <label>``. Each file holds the events
    of one recording (see :func:`load_events`); :class:`LoadEvents` reads
    them. ``tools/dataset_converters/tonic_to_npz.py`` writes tonic's data
    sets (DVS Gesture, N-MNIST, CIFAR10-DVS, ...) in this layout.

    Args:
        data_root (str): Root of the set.
        data_prefix (str): Folder of the files, relative to ``data_root``.
        ann_file (str): Annotation file; empty for the folder layout.
        extensions (Sequence[str]): File endings read. Defaults to
            ``('.npz', )``.
        **kwargs: Other arguments of :class:`CustomDataset` (``classes``
            through ``metainfo``, ``pipeline``, ``test_mode``, ...).
    """

    def __init__(self,
                 data_root='',
                 data_prefix='',
                 ann_file='',
                 extensions=('.npz', ),
                 **kwargs):
        super().__init__(
            data_root=data_root,
            data_prefix=data_prefix,
            ann_file=ann_file,
            extensions=extensions,
            **kwargs)


@TRANSFORMS.register_module()
class LoadEvents(BaseTransform):
    """Read the events of ``results['img_path']`` (a ``.npz`` file).

    Checks what the later transforms rely on, naming the file: time
    sorted (as tonic requires; sort when writing the file), coordinates
    inside the sensor, a single polarity for a one-polarity sensor.

    Required keys: ``img_path``. Added keys: ``events`` (structured array,
    :data:`EVENTS_DTYPE`), ``sensor_size`` (``(W, H, P)``),
    ``ori_shape`` and ``img_shape`` (``(H, W)``).

    Args:
        sensor_size (Sequence[int]): ``(W, H, P)`` of the camera, as tonic's
            data sets give it (e.g. ``(128, 128, 2)`` for DVS Gesture).
    """

    def __init__(self, sensor_size):
        self.sensor_size = _check_sensor_size('LoadEvents', sensor_size)

    def transform(self, results):
        path = results['img_path']
        events = load_events(path)
        width, height, polarities = self.sensor_size
        if len(events):
            if np.any(np.diff(events['t']) < 0):
                raise ValueError(
                    f'{path}: events are not sorted by time (sort them with '
                    f'a stable sort on t when writing the file)')
            for name, size in (('x', width), ('y', height)):
                if events[name].max() >= size:
                    raise ValueError(
                        f'{path}: {name} = {events[name].max()} lies outside '
                        f'the sensor, sensor_size (W, H, P) = '
                        f'{self.sensor_size}')
            if polarities == 1 and np.unique(events['p']).size > 1:
                raise ValueError(
                    f'{path}: the sensor has one polarity (sensor_size '
                    f'{self.sensor_size}) but the events have both')
        results['events'] = events
        results['sensor_size'] = self.sensor_size
        results['ori_shape'] = results['img_shape'] = (height, width)
        return results

    def __repr__(self):
        return f'{type(self).__name__}(sensor_size={self.sensor_size})'


@TRANSFORMS.register_module()
class RandomDropEvents(BaseTransform):
    """Drop a fraction ``drop_prob`` of the events, chosen at random
    (tonic's ``DropEvent``: ``round(drop_prob * N)`` events, the same random
    draws, so a seeded run drops the same events as tonic).

    Required and modified keys: ``events``.

    Args:
        drop_prob (float | tuple[float, float]): Fraction dropped, in
            ``[0, 1]``; a ``(low, high)`` range draws it per sample.
            Defaults to 0.1.
    """

    def __init__(self, drop_prob=0.1):
        low, high = (drop_prob, drop_prob) if np.isscalar(drop_prob) \
            else tuple(drop_prob)
        if not 0 <= low <= high <= 1:
            raise ValueError(f'RandomDropEvents: drop_prob must be in [0, 1] '
                             f'(or a range low <= high in it), got '
                             f'{drop_prob!r}')
        self.drop_prob = drop_prob
        self.range = None if np.isscalar(drop_prob) else (low, high)

    def transform(self, results):
        prob = self.drop_prob
        if self.range is not None:
            low, high = self.range
            prob = (high - low) * np.random.random_sample() + low
        events = results['events']
        num_dropped = int(prob * len(events) + 0.5)
        dropped = np.random.choice(len(events), num_dropped, replace=False)
        results['events'] = np.delete(events, dropped)
        return results

    def __repr__(self):
        return f'{type(self).__name__}(drop_prob={self.drop_prob})'


@TRANSFORMS.register_module()
class RandomFlipEvents(BaseTransform):
    """Mirror the events with probability ``prob`` (tonic's
    ``RandomFlipLR`` / ``RandomFlipUD``), and map the label of a class whose
    mirror image is another class.

    Mirroring a "wave left hand" recording shows a right hand waving, a
    "move left" one moves right: ``label_map`` names such pairs, e.g.
    ``{2: 3, 3: 2}``; labels not in it are kept.

    Required keys: ``events``, ``sensor_size``. Modified keys: ``events``,
    ``gt_label`` (with ``label_map``). Added keys: ``flip``,
    ``flip_direction``.

    Args:
        prob (float): Probability of flipping, in ``[0, 1]``.
            Defaults to 0.5.
        direction (str): ``'horizontal'`` (x) or ``'vertical'`` (y).
            Defaults to ``'horizontal'``.
        label_map (dict[int, int], optional): Label of each class's mirror
            image; each pair both ways (``{a: b, b: a}``). Defaults to None.
    """

    def __init__(self, prob=0.5, direction='horizontal', label_map=None):
        if not 0 <= prob <= 1:
            raise ValueError(f'RandomFlipEvents: prob must be in [0, 1], got '
                             f'{prob!r}')
        if direction not in ('horizontal', 'vertical'):
            raise ValueError(f'RandomFlipEvents: direction must be '
                             f'"horizontal" or "vertical", got {direction!r}')
        label_map = {int(k): int(v) for k, v in (label_map or {}).items()}
        one_way = [(k, v) for k, v in label_map.items()
                   if label_map.get(v, v) != k]
        if one_way:
            raise ValueError(f'RandomFlipEvents: label_map must map each pair '
                             f'both ways, got {label_map} ({one_way[0][0]} -> '
                             f'{one_way[0][1]} but not back)')
        self.prob = prob
        self.direction = direction
        self.label_map = label_map

    def transform(self, results):
        flip = bool(np.random.rand() < self.prob)
        results['flip'] = flip
        results['flip_direction'] = self.direction if flip else None
        if not flip:
            return results
        events = results['events'].copy()
        width, height, _ = results['sensor_size']
        if self.direction == 'horizontal':
            events['x'] = width - 1 - events['x']
        else:
            events['y'] = height - 1 - events['y']
        results['events'] = events
        if self.label_map and 'gt_label' in results:
            label = int(np.asarray(results['gt_label']).reshape(-1)[0])
            results['gt_label'] = self.label_map.get(label, label)
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(prob={self.prob}, '
                f'direction={self.direction!r}, label_map={self.label_map})')


def frame_indices(events, num_frames, by):
    """The frame (``0..num_frames-1``) of each event of a time-sorted stream.

    ``by='time'``: slices of ``w = (t_last - t_first) // num_frames`` time
    units from the first event, ``[t_first + i w, t_first + (i + 1) w)``;
    ``by='count'``: slices of ``n = len(events) // num_frames`` events in
    order. These are tonic's ``n_time_bins`` and ``n_event_bins`` slices
    (without overlap), except that the last slice takes the remainder,
    which tonic drops (with ``n_time_bins`` at least the last event, as
    its windows end before ``t_last``). A stream shorter than
    ``num_frames`` time units (events) gets slices of one unit (event).
    """
    if by == 'time':
        t = events['t']
        start = t[0]
        width = max((t[-1] - start) // num_frames, 1)
        index = (t - start) // width
    else:
        width = max(len(events) // num_frames, 1)
        index = np.arange(len(events)) // width
    return np.minimum(index, num_frames - 1).astype(np.int64)


@TRANSFORMS.register_module()
class EventsToFrames(BaseTransform):
    """Count the events into ``num_frames`` frames, ``T x P x H x W``, per
    polarity (tonic's ``ToFrame`` with ``n_time_bins`` or ``n_event_bins``,
    the last frame taking the remainder; see :func:`frame_indices`).

    Channel 0 counts the OFF events (``p = 0``), channel 1 the ON events,
    as in tonic; a one-polarity sensor counts all in channel 0.

    Required keys: ``events``, ``sensor_size``. Added keys: ``img``
    (float32 ``T x P x H x W`` counts). Removed keys: ``events``.

    Args:
        num_frames (int): Frames ``T``, positive.
        by (str): ``'time'`` (slices of equal duration) or ``'count'``
            (slices of equal event counts). Defaults to ``'time'``.
    """

    def __init__(self, num_frames, by='time'):
        if not isinstance(num_frames, int) or num_frames < 1:
            raise ValueError(f'EventsToFrames: num_frames must be a positive '
                             f'integer, got {num_frames!r}')
        if by not in ('time', 'count'):
            raise ValueError(f'EventsToFrames: by must be "time" or "count", '
                             f'got {by!r}')
        self.num_frames = num_frames
        self.by = by

    def transform(self, results):
        events = results.pop('events')
        width, height, polarities = results['sensor_size']
        shape = (self.num_frames, polarities, height, width)
        if not len(events):
            results['img'] = np.zeros(shape, np.float32)
            return results
        frame = frame_indices(events, self.num_frames, self.by)
        channel = events['p'].astype(np.int64) if polarities == 2 else 0
        flat = ((frame * polarities + channel) * height +
                events['y'].astype(np.int64)) * width + events['x']
        counts = np.bincount(flat, minlength=int(np.prod(shape)))
        results['img'] = counts.reshape(shape).astype(np.float32)
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(num_frames={self.num_frames}, '
                f'by={self.by!r})')


@TRANSFORMS.register_module()
class ResizeFrames(BaseTransform):
    """Resize ``T x C x H x W`` frames to ``scale = (w, h)``.

    ``'area'`` averages the counts of each output pixel's input area (the
    right choice for shrinking event counts), ``'nearest'`` keeps values,
    ``'bilinear'`` interpolates.

    Required and modified keys: ``img``, ``img_shape``. Added keys:
    ``scale_factor`` (``(w_scale, h_scale)``).

    Args:
        scale (Sequence[int]): Output ``(w, h)``, as MMCV's ``Resize``.
        interpolation (str): ``'area'``, ``'nearest'`` or ``'bilinear'``.
            Defaults to ``'area'``.
    """

    def __init__(self, scale, interpolation='area'):
        scale = tuple(scale)
        if len(scale) != 2 or not all(
                isinstance(s, int) and s > 0 for s in scale):
            raise ValueError(f'ResizeFrames: scale must be (w, h), two '
                             f'positive integers, got {scale!r}')
        if interpolation not in ('area', 'nearest', 'bilinear'):
            raise ValueError(f'ResizeFrames: interpolation must be "area", '
                             f'"nearest" or "bilinear", got '
                             f'{interpolation!r}')
        self.scale = scale
        self.interpolation = interpolation

    def transform(self, results):
        frames = results['img']
        if frames.ndim != 4:
            raise ValueError(f'ResizeFrames: expects T x C x H x W frames, '
                             f'got shape {frames.shape}')
        height, width = frames.shape[-2:]
        out_w, out_h = self.scale
        extra = dict(align_corners=False) \
            if self.interpolation == 'bilinear' else {}
        resized = F.interpolate(
            torch.from_numpy(np.ascontiguousarray(frames, np.float32)),
            size=(out_h, out_w),
            mode=self.interpolation,
            **extra)
        results['img'] = resized.numpy()
        results['img_shape'] = (out_h, out_w)
        results['scale_factor'] = (out_w / width, out_h / height)
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(scale={self.scale}, '
                f'interpolation={self.interpolation!r})')


@TRANSFORMS.register_module()
class BinarizeFrames(BaseTransform):
    """Frames to 0/1: 1 where the value exceeds ``threshold`` (e.g. where
    a pixel had any event, with the default 0).

    Required and modified keys: ``img``.

    Args:
        threshold (float): Values above it become 1. Defaults to 0.
    """

    def __init__(self, threshold=0.):
        self.threshold = float(threshold)

    def transform(self, results):
        results['img'] = (results['img'] > self.threshold).astype(np.float32)
        return results

    def __repr__(self):
        return f'{type(self).__name__}(threshold={self.threshold})'


def write_event_file(path, events):
    """Write ``events`` (a structured array with fields ``x, y, t, p``, or
    a dict of four equally long arrays) as one ``.npz`` file in
    :data:`EVENTS_DTYPE`, which :func:`load_events` reads. Values that do
    not fit the layout raise an error."""
    out = np.empty(len(np.asarray(events['t'])), EVENTS_DTYPE)
    for name in _FIELDS:
        values = np.asarray(events[name])
        if name == 'p' and values.size and (values.min() < 0
                                            or values.max() > 1):
            raise ValueError(f'{path}: polarities must be 0 and 1, got '
                             f'values in {values.min()}..{values.max()}')
        out[name] = values
        if not np.array_equal(out[name], values):
            raise ValueError(f'{path}: field {name} does not fit '
                             f'{EVENTS_DTYPE[name]}')
    np.savez_compressed(path, events=out)
    return osp.abspath(path)


def class_folder_name(name):
    """A class name as a folder name: characters other than letters,
    digits, ``-`` and ``.`` become ``_`` (annotation lines are split at
    spaces)."""
    return re.sub(r'[^0-9A-Za-z.-]+', '_', str(name)).strip('_') or 'class'


def write_event_split(samples, classes, out_dir, split):
    """Write labelled recordings in :class:`EventStreamDataset`'s layout.

    Writes ``out_dir/<split>/<class>/<index>.npz``
    (:func:`write_event_file`), the annotation file
    ``out_dir/meta/<split>.txt`` (lines ``<class>/<index>.npz <label>``)
    and ``out_dir/meta/classes.txt`` (one name per line, the ``classes``
    argument of the data set).

    Args:
        samples (Iterable[tuple]): ``(events, label)`` pairs, e.g. a tonic
            data set (``tonic.datasets.DVSGesture(...)``): events a
            structured array with fields ``x, y, t, p``, label an integer
            in ``0..len(classes) - 1``.
        classes (Sequence[str]): Class names, in label order.
        out_dir (str): Root of the written set.
        split (str): Split name (``'train'``, ``'test'``, ...).

    Returns:
        int: Recordings written.
    """
    folders = [class_folder_name(name) for name in classes]
    if len(set(folders)) != len(folders):
        raise ValueError(f'write_event_split: class names {list(classes)} '
                         f'give folder names {folders} that are not unique')
    os.makedirs(osp.join(out_dir, 'meta'), exist_ok=True)
    lines = []
    for index, (events, label) in enumerate(samples):
        label = int(np.asarray(label).reshape(-1)[0])
        if not 0 <= label < len(classes):
            raise ValueError(f'write_event_split: sample {index} has label '
                             f'{label}, outside 0..{len(classes) - 1}')
        relative = f'{folders[label]}/{index:06d}.npz'
        path = osp.join(out_dir, split, relative)
        os.makedirs(osp.dirname(path), exist_ok=True)
        write_event_file(path, events)
        lines.append(f'{relative} {label}\n')
    with open(osp.join(out_dir, 'meta', f'{split}.txt'), 'w') as f:
        f.writelines(lines)
    with open(osp.join(out_dir, 'meta', 'classes.txt'), 'w') as f:
        f.writelines(f'{name}\n' for name in classes)
    return len(lines)
