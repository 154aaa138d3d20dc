"""Event streams (``t, x, y, p``): reading and checking them, and the
transforms that turn a stream into ``T x P x H x W`` frames. Needs no
OpenMMLab library but MMCV; the data set of recordings,
:class:`~sdt3_mm.datasets.EventStreamDataset`, is MMPretrain's and lives in
:mod:`.event_stream_dataset`.

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
import zipfile

import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import BaseTransform

from sdt3_mm.registry import TRANSFORMS
from sdt3_mm.utils.arguments import is_integer

#: tonic's event layout (``tonic.io.events_struct``).
EVENTS_DTYPE = np.dtype([('x', np.int16), ('y', np.int16), ('t', np.int64),
                         ('p', bool)])
_FIELDS = ('x', 'y', 't', 'p')


def check_count(owner, name, value, minimum=1):
    """``value`` as an ``int``, checked to be an integer >= ``minimum``.

    Python and NumPy integers are accepted alike (a config value computed
    with NumPy, ``np.int64(5)``, is a count like ``5``); ``bool``, floats
    and strings are not.

    Args:
        owner (str): Who asks, for the message.
        name (str): The argument's name, for the message.
        value: The value given.
        minimum (int): The smallest value allowed. Defaults to 1.

    Returns:
        int: ``value``.

    Raises:
        ValueError: ``value`` is not an integer or is below ``minimum``.
    """
    if not is_integer(value) or value < minimum:
        kind = 'a positive integer' if minimum == 1 else \
            f'an integer >= {minimum}'
        raise ValueError(f'{owner}: {name} must be {kind}, got {value!r} '
                         f'({type(value).__name__})')
    return int(value)


def _check_sensor_size(owner, sensor_size):
    try:
        size = tuple(sensor_size)
    except TypeError:
        size = ()
    if len(size) != 3:
        raise ValueError(f'{owner}: sensor_size must be (W, H, P), three '
                         f'positive integers, got {sensor_size!r}')
    size = tuple(
        check_count(owner, f'sensor_size {axis}', s)
        for axis, s in zip('WHP', size))
    if size[2] not in (1, 2):
        raise ValueError(f'{owner}: sensor_size P (polarities) must be 1 or '
                         f'2, got {size[2]}')
    return size


def _value_range(values):
    return f'{values.min()}..{values.max()}'


def as_events(events, where):
    """Events in :data:`EVENTS_DTYPE`, from a structured array with fields
    ``x, y, t, p`` (any integer or bool field types, any field order, other
    fields ignored) or a dict of four arrays; each value checked to fit.

    An array already in :data:`EVENTS_DTYPE` is returned as it is (after
    the coordinate check); others are copied. Nothing is wrapped or cut:
    an ``int32`` ``x = 65546`` is refused, not read as 10.

    Args:
        events (np.ndarray | dict): The events.
        where (str): What they are (a file name), for the messages.

    Returns:
        np.ndarray: 1-D structured array, :data:`EVENTS_DTYPE`.

    Raises:
        ValueError: A field missing, not 1-D integer (or bool) arrays of
            one length, coordinates negative or beyond ``int16``,
            polarities other than 0 and 1, times beyond ``int64``; the
            message names ``where`` and the offending values.
    """
    if isinstance(events, np.ndarray):
        names = events.dtype.names or ()
        if not set(_FIELDS) <= set(names):
            raise ValueError(
                f'{where}: events must be a structured array with fields '
                f'x, y, t, p, got {names or events.dtype}')
    elif isinstance(events, dict):
        missing = [name for name in _FIELDS if name not in events]
        if missing:
            raise ValueError(f'{where}: events must have arrays x, y, t, p; '
                             f'missing {missing}')
    else:
        raise ValueError(f'{where}: events must be a structured array with '
                         f'fields x, y, t, p or a dict of four arrays, got '
                         f'{type(events).__name__}')
    fields = {name: np.asarray(events[name]) for name in _FIELDS}
    shapes = {name: value.shape for name, value in fields.items()}
    if any(v.ndim != 1
           for v in fields.values()) or len(set(shapes.values())) != 1:
        raise ValueError(f'{where}: x, y, t, p must be 1-D arrays of one '
                         f'length, got shapes {shapes}')
    for name, value in fields.items():
        if not (np.issubdtype(value.dtype, np.integer) or value.dtype == bool):
            raise ValueError(f'{where}: field {name} must hold integers, got '
                             f'{value.dtype}')
    p = fields['p']
    if p.size and p.dtype != bool and (p.min() < 0 or p.max() > 1):
        raise ValueError(f'{where}: polarities must be 0 (darker) and 1 '
                         f'(brighter), got values in {_value_range(p)} '
                         f'(map -1/1 recordings to 0/1 when writing them)')
    for name in ('x', 'y', 't'):
        value = fields[name]
        info = np.iinfo(EVENTS_DTYPE[name])
        low = 0 if name != 't' else info.min
        if not value.size or value.dtype == bool:
            continue
        # a dtype that fits needs no maximum (nor, for t, minimum) check
        fits = np.can_cast(value.dtype, EVENTS_DTYPE[name])
        too_low = (name != 't' or not fits) and value.min() < low
        too_high = not fits and value.max() > info.max
        if too_low or too_high:
            what = 'coordinates' if name != 't' else 'times'
            raise ValueError(
                f'{where}: {name} {what} must be in {low}..{info.max} '
                f'({EVENTS_DTYPE[name]} of the events layout; values outside '
                f'are refused, not wrapped), got values in '
                f'{_value_range(value)}')
    if isinstance(events, np.ndarray) and events.dtype == EVENTS_DTYPE \
            and events.ndim == 1:
        return events
    out = np.empty(len(p), EVENTS_DTYPE)
    for name in _FIELDS:
        out[name] = fields[name]
    return out


def _check_sorted(t, where):
    backwards = np.flatnonzero(t[1:] < t[:-1])
    if backwards.size:
        i = int(backwards[0])
        raise ValueError(
            f'{where}: events are not sorted by time (t[{i}] = {t[i]} > '
            f't[{i + 1}] = {t[i + 1]}; {backwards.size} steps back). Sort '
            f'them with a stable sort on t when writing the file '
            f'(write_event_file(..., sort_by_time=True)): tonic assumes '
            f'sorted events too, and we refuse rather than reorder')


def check_events(events, sensor_size, where):
    """Check what binning events into frames relies on, naming ``where``.

    Timestamps sorted (non-decreasing): tonic's slicers (``ToFrame``)
    assume it and bin unsorted events wrongly without a word; we refuse
    them instead of sorting (a reordered stream is not the recording).
    Coordinates inside the sensor (``0 <= x < W``, ``0 <= y < H``): an
    ``x >= W`` would land in the next row. A one-polarity sensor gets
    events of one polarity (tonic's ``ToFrame`` refuses both, too).

    Args:
        events (np.ndarray): :data:`EVENTS_DTYPE` events (see
            :func:`as_events`).
        sensor_size (tuple[int, int, int]): ``(W, H, P)``.
        where (str): What they are (a file name), for the messages.

    Raises:
        ValueError: For unsorted times, coordinates outside the sensor or
            both polarities on a one-polarity sensor.
    """
    if not len(events):
        return
    width, height, polarities = sensor_size
    _check_sorted(events['t'], where)
    for name, size in (('x', width), ('y', height)):
        value = events[name]
        if value.min() < 0 or value.max() >= size:
            outside = (value < 0) | (value >= size)
            raise ValueError(
                f'{where}: {name} values {_value_range(value)} reach outside '
                f'the sensor ({outside.sum()} events; {name} must be in '
                f'0..{size - 1}, sensor_size (W, H, P) = '
                f'{tuple(sensor_size)}); refused, not wrapped or clipped')
    if polarities == 1 and np.unique(events['p']).size > 1:
        raise ValueError(f'{where}: the sensor has one polarity (sensor_size '
                         f'{tuple(sensor_size)}) but the events have both')


def _npz_member(data, name, path):
    """One array of an open ``.npz`` archive, errors naming the file."""
    try:
        value = data[name]
    except ValueError as error:  # object arrays, a broken .npy header
        raise ValueError(f'{path}: member "{name}" cannot be read as a '
                         f'numeric array ({error})') from None
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f'{path}: member "{name}" is damaged '
                         f'({error})') from None
    if not isinstance(value, np.ndarray):
        raise ValueError(f'{path}: member "{name}" is not a NumPy array '
                         f'(a {type(value).__name__} in the archive)')
    return value


def load_events(path):
    """Read the events of one ``.npz`` file.

    The file holds either one structured array ``events`` with fields
    ``x, y, t, p`` (tonic's layout, any integer or bool field types, any
    field order) or four arrays ``x``, ``y``, ``t``, ``p`` of one length.

    Returns:
        np.ndarray: The events as :data:`EVENTS_DTYPE`, in file order.

    Raises:
        FileNotFoundError: No such file.
        ValueError: The file is no ``.npz`` archive (an ``.npy`` array, a
            damaged or other file), holds neither layout, pickled objects
            or a member that is not an array, arrays of different lengths,
            a field that is not integer (or bool), polarities other than 0
            and 1, or values that do not fit :data:`EVENTS_DTYPE`
            (negative coordinates or beyond ``int16``; see
            :func:`as_events`); the message names the file.
    """
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise ValueError(f'{path}: not a readable .npz archive of events '
                         f'({error})') from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f'{path}: holds one array (an .npy file), not an '
                         f'.npz archive of events (write it with '
                         f'sdt3_mm.datasets.write_event_file)')
    with data:
        keys = set(data.files)
        if 'events' in keys:
            array = _npz_member(data, 'events', path)
            if not set(_FIELDS) <= set(array.dtype.names or ()):
                raise ValueError(
                    f'{path}: "events" must be a structured array with '
                    f'fields x, y, t, p, got '
                    f'{array.dtype.names or array.dtype}')
            fields = {name: array[name] for name in _FIELDS}
        elif set(_FIELDS) <= keys:
            fields = {name: _npz_member(data, name, path) for name in _FIELDS}
        else:
            raise ValueError(
                f'{path}: expected an array "events" (fields x, y, t, p) or '
                f'arrays "x", "y", "t", "p"; the file has {sorted(keys)}')
    return as_events(fields, path)


@TRANSFORMS.register_module()
class LoadEvents(BaseTransform):
    """Read the events of ``results['img_path']`` (a ``.npz`` file).

    Checks what the later transforms rely on, naming the file
    (:func:`check_events`): time sorted (as tonic requires; sort when
    writing the file), coordinates inside the sensor, a single polarity
    for a one-polarity sensor.

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
        check_events(events, self.sensor_size, path)
        width, height, _ = self.sensor_size
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


def event_slices(events,
                 num_frames=None,
                 by='time',
                 time_window=None,
                 event_count=None,
                 overlap=0,
                 include_incomplete=False,
                 start_time=None,
                 end_time=None):
    """``(start, end)`` event indices of the slices (frames) of a time-sorted
    stream, as tonic's slicers (``tonic.slicers``, used by ``ToFrame``)
    cut it.

    Give one of ``num_frames``, ``time_window`` and ``event_count``:

    - ``num_frames`` with ``by='time'`` (tonic's ``n_time_bins``): windows
      of ``w = (t_last - t_first) // num_frames * (1 + overlap)`` time
      units starting every ``w * (1 - overlap)`` from ``t_first``;
      ``by='count'`` (``n_event_bins``): ``n = int(N // num_frames *
      (1 + overlap))`` events starting every ``int(n * (1 - overlap))``.
      ``overlap`` is a fraction of a slice, in ``[0, 1)``. Unlike tonic,
      the last slice also takes the remainder (tonic drops it; by time at
      least the last event, as its windows end before ``t_last``), and a
      stream shorter than ``num_frames`` time units (events) counts as
      ``num_frames`` long (tonic's zero-width slices would all be empty).
    - ``time_window`` (``SliceByTime``): windows of ``time_window`` time
      units every ``time_window - overlap`` (``overlap`` in time units)
      from ``start_time`` (default ``t_first``) up to ``end_time`` (default
      ``t_last``); the windows that fit, at least one, and with
      ``include_incomplete`` one more partial window.
    - ``event_count`` (``SliceByEventCount``): ``event_count`` events every
      ``event_count - overlap`` (``overlap`` in events); the complete
      slices, at least one, with ``include_incomplete`` also the partial
      last one.

    With ``time_window`` and ``event_count`` the number of slices depends on
    the recording, as in tonic. Slices overlap when ``overlap > 0``: an
    event then counts in every slice that holds it.

    Args:
        events (np.ndarray): Events sorted by ``t``, at least one.
        num_frames (int, optional): Number of slices.
        by (str): ``'time'`` or ``'count'``, with ``num_frames``.
        time_window (float, optional): Slice duration, in ``t`` units.
        event_count (int, optional): Events per slice.
        overlap (float): See above. Defaults to 0.
        include_incomplete (bool): See above. Defaults to False.
        start_time, end_time (float, optional): Span sliced by
            ``time_window``. Default to the first and last event times.

    Returns:
        np.ndarray: ``S x 2`` int64 ``(start, end)`` indices into
        ``events``, ``end`` exclusive.
    """
    t = events['t']
    n_events = len(events)
    if num_frames is not None and by == 'time':
        window = max((t[-1] - t[0]) // num_frames, 1) * (1 + overlap)
        starts = np.arange(num_frames) * (window * (1 - overlap)) + t[0]
        bounds = np.stack(
            [np.searchsorted(t, starts),
             np.searchsorted(t, starts + window)], 1)
        bounds[-1, 1] = n_events  # the remainder
    elif num_frames is not None:
        count = int(max(n_events // num_frames, 1) * (1 + overlap))
        starts = np.arange(num_frames) * int(count * (1 - overlap))
        bounds = np.stack([starts, starts + count], 1)
        bounds[-1, 1] = n_events  # the remainder
    elif time_window is not None:
        stride = time_window - overlap
        start = t[0] if start_time is None else start_time
        end = t[-1] if end_time is None else end_time
        rounding = np.ceil if include_incomplete else np.floor
        num = max(int(rounding((end - start - time_window) / stride) + 1), 1)
        starts = np.arange(num) * stride + start
        bounds = np.stack([
            np.searchsorted(t, starts),
            np.searchsorted(t, starts + time_window)
        ], 1)
    else:
        count = min(event_count, n_events)
        stride = event_count - overlap
        rounding = np.ceil if include_incomplete else np.floor
        num = int(rounding((n_events - count) / stride) + 1)
        starts = np.arange(num) * stride
        bounds = np.stack([starts, starts + count], 1)
    return np.minimum(bounds, n_events).astype(np.int64)


def frame_indices(events, num_frames, by):
    """The frame (``0..num_frames-1``) of each event of a time-sorted
    stream, for slices without overlap (:func:`event_slices` with
    ``num_frames`` and ``by``): every event lies in exactly one frame."""
    bounds = event_slices(events, num_frames=num_frames, by=by)
    index = np.zeros(len(events), np.int64)
    for frame, (start, end) in enumerate(bounds):
        index[start:end] = frame
    return index


def _real(owner, name, value, low, high=None, high_open=True):
    """``value``, checked to be a finite real number in ``[low, high)``
    (``[low, high]`` unless ``high_open``); Python or NumPy numbers, no
    bool."""
    number = not isinstance(value, (bool, np.bool_)) and isinstance(
        value, (int, float, np.integer, np.floating))
    above = high is not None and (
        value >= high if high_open else value > high) if number else False
    if not number or not np.isfinite(value) or value < low or above:
        bound = '' if high is None else \
            f', below {high}' if high_open else f', at most {high}'
        least = f' >= {low}' if np.isfinite(low) else ''
        raise ValueError(f'{owner}: {name} must be a finite number{least}'
                         f'{bound}, got {value!r}')
    return value


@TRANSFORMS.register_module()
class EventsToFrames(BaseTransform):
    """Count the events into frames, ``T x P x H x W``, per polarity, as
    tonic's ``ToFrame`` slices them (see :func:`event_slices`).

    One of:

    - ``num_frames=T, by='time'`` (``ToFrame(n_time_bins=T)``) or
      ``by='count'`` (``n_event_bins=T``): ``T`` frames for every
      recording; the last frame also takes the remainder, which tonic
      drops. ``overlap`` is a fraction of a frame, in ``[0, 1)``.
    - ``time_window=w`` (``ToFrame(time_window=w)``) or ``event_count=n``
      (``ToFrame(event_count=n)``): frames of ``w`` time units (of ``n``
      events), exactly as tonic's (incomplete slices dropped unless
      ``include_incomplete``); ``overlap`` in time units (events). The
      number of frames depends on the recording's length, so recordings of
      different lengths do not batch together (``FramesDataPreprocessor``
      says so): use them with batches of one, or recordings of one length.

    Channel 0 counts the OFF events (``p = 0``), channel 1 the ON events,
    as in tonic; a one-polarity sensor counts in channel 0 and must get
    events of one polarity (as in tonic).

    Called directly (not after :class:`LoadEvents`), the events are
    checked as :class:`LoadEvents` checks a file (:func:`as_events`,
    :func:`check_events`): sorted by time (unsorted events are refused, not
    sorted), coordinates inside the sensor (never wrapped into the next
    row); messages name ``img_path`` where the results have one. An empty
    stream gives all-zero frames (one frame for ``time_window`` and
    ``event_count``).

    Required keys: ``events``, ``sensor_size``. Added keys: ``img``
    (float32 ``T x P x H x W`` counts). Removed keys: ``events``.

    Args:
        num_frames (int, optional): Frames ``T``, positive (a Python or
            NumPy integer).
        by (str, optional): With ``num_frames``: ``'time'`` (slices of equal
            duration) or ``'count'`` (slices of equal event counts).
            Defaults to ``'time'``.
        time_window (float, optional): Frame duration, in the recording's
            time unit (microseconds in most).
        event_count (int, optional): Events per frame.
        overlap (float): Overlap of consecutive frames (see above).
            Defaults to 0.
        include_incomplete (bool): With ``time_window`` or ``event_count``,
            keep the partial last frame. Defaults to False.
        start_time, end_time (float, optional): With ``time_window``, the
            span sliced (tonic's; defaults: first and last event times).

    Raises:
        ValueError: None or more than one of ``num_frames``,
            ``time_window``, ``event_count``; an option that does not go
            with the one chosen, or a value out of its range (the message
            names the option).
    """

    def __init__(self,
                 num_frames=None,
                 by=None,
                 time_window=None,
                 event_count=None,
                 overlap=0,
                 include_incomplete=False,
                 start_time=None,
                 end_time=None):
        owner = 'EventsToFrames'
        chosen = [
            name
            for name, value in (('num_frames', num_frames),
                                ('time_window', time_window), ('event_count',
                                                               event_count))
            if value is not None
        ]
        if len(chosen) != 1:
            raise ValueError(f'{owner}: give exactly one of num_frames, '
                             f'time_window and event_count (as tonic\'s '
                             f'ToFrame), got {chosen or "none"}')
        if num_frames is not None:
            num_frames = check_count(owner, 'num_frames', num_frames)
            by = 'time' if by is None else by
            if by not in ('time', 'count'):
                raise ValueError(f'{owner}: by must be "time" or "count", '
                                 f'got {by!r}')
            overlap = _real(
                owner, 'overlap (a fraction of a frame, with '
                'num_frames)', overlap, 0, 1)
            not_here = dict(
                include_incomplete=include_incomplete,
                start_time=start_time,
                end_time=end_time)
        else:
            if by is not None:
                raise ValueError(f'{owner}: by goes with num_frames only, '
                                 f'not with {chosen[0]}')
            if time_window is not None:
                time_window = _real(owner, 'time_window', time_window, 0)
                if time_window == 0:
                    raise ValueError(f'{owner}: time_window must be '
                                     f'positive, got {time_window!r}')
                overlap = _real(owner, 'overlap (time units, with '
                                'time_window)', overlap, 0, time_window)
                for name, value in (('start_time', start_time), ('end_time',
                                                                 end_time)):
                    if value is not None:
                        _real(owner, name, value, -np.inf)
                if start_time is not None and end_time is not None \
                        and end_time < start_time:
                    raise ValueError(f'{owner}: end_time {end_time!r} is '
                                     f'before start_time {start_time!r}')
                not_here = {}
            else:
                event_count = check_count(owner, 'event_count', event_count)
                overlap = check_count(owner,
                                      'overlap (events, with event_count)',
                                      overlap, 0)
                if overlap >= event_count:
                    raise ValueError(
                        f'{owner}: overlap (events, with event_count) must '
                        f'be below event_count {event_count}, got {overlap}')
                not_here = dict(start_time=start_time, end_time=end_time)
            if not isinstance(include_incomplete, (bool, np.bool_)):
                raise ValueError(f'{owner}: include_incomplete must be True '
                                 f'or False, got {include_incomplete!r}')
            include_incomplete = bool(include_incomplete)
        given = [
            name for name, value in not_here.items()
            if value is not None and value is not False  # 0 is given
        ]
        if given:
            takes = 'time_window' if given[0].endswith('_time') \
                else 'time_window or event_count'
            raise ValueError(f'{owner}: {given[0]} does not go with '
                             f'{chosen[0]} (tonic\'s ToFrame takes it with '
                             f'{takes} only)')
        self.num_frames = num_frames
        self.by = by
        self.time_window = time_window
        self.event_count = event_count
        self.overlap = overlap
        self.include_incomplete = include_incomplete
        self.start_time = start_time
        self.end_time = end_time

    def transform(self, results):
        where = results.get('img_path', 'EventsToFrames')
        width, height, polarities = _check_sensor_size(f'{where}',
                                                       results['sensor_size'])
        events = as_events(results.pop('events'), where)
        check_events(events, (width, height, polarities), where)
        if not len(events):
            shape = (self.num_frames or 1, polarities, height, width)
            results['img'] = np.zeros(shape, np.float32)
            return results
        bounds = event_slices(
            events,
            num_frames=self.num_frames,
            by=self.by,
            time_window=self.time_window,
            event_count=self.event_count,
            overlap=self.overlap,
            include_incomplete=self.include_incomplete,
            start_time=self.start_time,
            end_time=self.end_time)
        # each event's pixel and channel, then its frame(s)
        pixel = events['y'].astype(np.int64) * width + events['x']
        if polarities == 2:
            pixel += events['p'] * (height * width)
        frame_size = polarities * height * width
        lengths = bounds[:, 1] - bounds[:, 0]
        offsets = np.repeat(np.arange(len(bounds)) * frame_size, lengths)
        if np.array_equal(bounds[1:, 0], bounds[:-1, 1]):
            # consecutive slices (no overlap): one contiguous run
            flat = pixel[bounds[0, 0]:bounds[-1, 1]] + offsets
        else:  # an event counts in every slice that holds it
            flat = pixel[np.concatenate(
                [np.arange(start, end) for start, end in bounds])] + offsets
        shape = (len(bounds), polarities, height, width)
        counts = np.bincount(flat, minlength=int(np.prod(shape)))
        results['img'] = counts.reshape(shape).astype(np.float32)
        return results

    def __repr__(self):
        if self.num_frames is not None:
            args = f'num_frames={self.num_frames}, by={self.by!r}'
        elif self.time_window is not None:
            args = f'time_window={self.time_window}'
        else:
            args = f'event_count={self.event_count}'
        if self.overlap:
            args += f', overlap={self.overlap}'
        if self.include_incomplete:
            args += ', include_incomplete=True'
        for name in ('start_time', 'end_time'):
            if getattr(self, name) is not None:
                args += f', {name}={getattr(self, name)}'
        return f'{type(self).__name__}({args})'


@TRANSFORMS.register_module()
class ResizeFrames(BaseTransform):
    """Resize ``T x C x H x W`` frames to ``scale = (w, h)``.

    ``'area'`` averages the counts of each output pixel's input area (the
    right choice for shrinking event counts), ``'nearest'`` keeps values,
    ``'bilinear'`` interpolates.

    Required and modified keys: ``img``, ``img_shape``. Added keys:
    ``scale_factor`` (``(w_scale, h_scale)``).

    Args:
        scale (Sequence[int]): Output ``(w, h)``, as MMCV's ``Resize``
            (Python or NumPy integers).
        interpolation (str): ``'area'``, ``'nearest'`` or ``'bilinear'``.
            Defaults to ``'area'``.
    """

    def __init__(self, scale, interpolation='area'):
        try:
            size = tuple(scale)
        except TypeError:
            size = ()
        if len(size) != 2:
            raise ValueError(f'ResizeFrames: scale must be (w, h), two '
                             f'positive integers, got {scale!r}')
        scale = tuple(
            check_count('ResizeFrames', f'scale {axis}', s)
            for axis, s in zip('wh', size))
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


def write_event_file(path, events, sort_by_time=False):
    """Write ``events`` as one ``.npz`` file in :data:`EVENTS_DTYPE`, which
    :func:`load_events` reads.

    Args:
        path (str): The file.
        events (np.ndarray | dict): A structured array with fields
            ``x, y, t, p`` (tonic's, any integer field types) or a dict of
            four equally long arrays.
        sort_by_time (bool): Sort the events by ``t`` first, stably (events
            of one time keep their order). Without it unsorted events are
            refused: :class:`LoadEvents` refuses such a file, as tonic's
            slicers assume sorted events. Defaults to False.

    Returns:
        str: The absolute path written.

    Raises:
        ValueError: For values that do not fit the layout (see
            :func:`as_events`: nothing is cast or wrapped) or unsorted
            times; the message names ``path``.
    """
    events = as_events(events, path)
    if sort_by_time:
        events = events[np.argsort(events['t'], kind='stable')]
    _check_sorted(events['t'], path)
    np.savez_compressed(path, events=events)
    return osp.abspath(path)


def class_folder_name(name):
    """A class name as a folder name: characters other than letters,
    digits, ``-`` and ``.`` become ``_`` (annotation lines are split at
    spaces)."""
    return re.sub(r'[^0-9A-Za-z.-]+', '_', str(name)).strip('_') or 'class'


def write_event_split(samples, classes, out_dir, split, sort_by_time=False):
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
        sort_by_time (bool): Sort each recording by time, stably (see
            :func:`write_event_file`). Defaults to False.

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
        write_event_file(path, events, sort_by_time)
        lines.append(f'{relative} {label}\n')
    with open(osp.join(out_dir, 'meta', f'{split}.txt'), 'w') as f:
        f.writelines(lines)
    with open(osp.join(out_dir, 'meta', 'classes.txt'), 'w') as f:
        f.writelines(f'{name}\n' for name in classes)
    return len(lines)
