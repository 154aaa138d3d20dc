"""Synthetic event-camera recordings of moving textured shapes.

Each sample is what a still DVS (dynamic vision sensor) would record
while one textured shape moves over a static textured background: the
shape moves left, right, up or down, grows or shrinks
(:data:`EVENT_SHAPE_CLASSES`; image coordinates, so ``move_up`` is towards
row 0). The events are made the way event simulators such as ESIM and v2e
make them from video:

1. **Frames.** ``num_frames`` grey-level frames of the scene are rendered
   at evenly spaced times over ``duration_us``. The shape is a convex
   polygon or a circle (the convex ones of :data:`.shapes.SHAPE_CLASSES`)
   drawn with anti-aliased edges (coverage from the signed distance to the
   outline), and its texture moves and scales with it (bilinear sampling in
   the shape's own coordinates), so sub-pixel motion changes the frames
   smoothly. The background never moves. The textures come from
   :func:`.shapes.texture`, a different kind for shape and background.
   The shape is everywhere brighter than the background (shape levels
   0.7-1 times a pattern of depth 0.2-0.45, background 0.15-0.35 times one
   of depth 0.3-0.6), so a moving shape fires ON events on its leading
   edge and OFF events on its trailing one, a growing shape ON events all
   round and a shrinking one OFF events: one time bin of the recording
   already tells the motion.
2. **Log intensity.** Every pixel sees ``L = log(I + eps)``, ``I`` in
   (0, 1].
3. **Contrast thresholds.** Each pixel has its own ON and OFF threshold,
   drawn once per sample from ``N(threshold, threshold_sigma)`` (clipped
   to at least 0.01): the mismatch of real pixels.
4. **Threshold crossings.** Each pixel keeps a reference log intensity,
   the first frame's at the start. Between two frames, a pixel whose
   ``L`` has moved ``k >= 1`` ON (OFF) thresholds above (below) its
   reference fires ``k`` ON (OFF) events, timed where the line between
   the two frames' ``L`` crosses ``reference + j * threshold``
   (``j = 1..k``), and its reference moves by ``k`` thresholds. (No
   refractory period and no bandwidth limit.)
5. **Noise.** Background-activity events at ``noise_rate`` per pixel and
   second, at uniformly random pixels, times and polarities; then every
   timestamp gets a small Gaussian jitter (``jitter_us``), is rounded to
   whole microseconds and clipped to ``[0, duration_us]``, and the events
   are sorted by time (stable).

A sample is one ``.npz`` with a single array ``events`` in tonic's layout:
a structured array of ``x`` and ``y`` (int16; ``0 <= x < W``,
``0 <= y < H``), ``t`` (int64 microseconds, from 0) and ``p`` (bool, True
for ON, brightness up), sorted by ``t``. Binning them into frames is left
to the readers.

Everything is drawn from ``numpy.random.default_rng((seed, split,
index))``, so a set is the same in every run and process (byte for byte on
one machine; another CPU's vectorised ``log`` could move a crossing that
lands exactly on a threshold).
"""
import math
import os
import os.path as osp

import numpy as np

from sdt3_mm.datasets.events import EVENTS_DTYPE, check_count
from .shapes import _SPLIT_IDS, TEXTURES, _write_once, shape_polygon, texture

EVENT_SHAPE_CLASSES = ('move_left', 'move_right', 'move_up', 'move_down',
                       'grow', 'shrink')
# The shapes with a convex outline, whose coverage is the signed distance to
# the nearest edge line.
EVENT_SHAPES = ('circle', 'square', 'triangle', 'hexagon')


def _edge_lines(name, angle):
    """Outward unit normals (K x 2) of a convex shape of circumradius 1
    centred at the origin, and each edge's distance from the centre (K,).
    A circle has none."""
    if name == 'circle':
        return np.zeros((0, 2)), np.zeros(0)
    unit = shape_polygon(name, 0.0, 0.0, 1.0, angle).astype(np.float64)
    edges = np.roll(unit, -1, 0) - unit
    normals = np.stack([edges[:, 1], -edges[:, 0]], 1)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    offsets = (normals * unit).sum(1)
    # Point the normals away from the centre, whatever the winding.
    normals *= np.sign(offsets)[:, None]
    return normals, np.abs(offsets)


def _sample_bilinear(patch, u, v):
    """``patch`` (h x w) read at the fractional columns ``u`` and rows
    ``v`` (clipped into the patch)."""
    h, w = patch.shape
    u = np.clip(u, 0, w - 1.001)
    v = np.clip(v, 0, h - 1.001)
    u0 = u.astype(np.intp)
    v0 = v.astype(np.intp)
    fu, fv = u - u0, v - v0
    flat = patch.ravel()
    corner = v0 * w + u0
    top = flat.take(corner)
    top += (flat.take(corner + 1) - top) * fu
    bottom = flat.take(corner + w)
    bottom += (flat.take(corner + w + 1) - bottom) * fu
    return top + (bottom - top) * fv


def _grey_texture(rng, height, width, level, contrast, kind):
    """A ``height x width`` float texture of mean brightness around
    ``level`` (0-1), from :func:`.shapes.texture`."""
    color = np.full(3, level * 255.0)
    patch = texture(rng, height, width, color, contrast, kind)[..., 0]
    return patch.astype(np.float32) / np.float32(255)


def motion_frames(rng, label, sensor_size, num_frames):
    """Render the frames of one motion of a random textured shape.

    Args:
        rng (np.random.Generator): Random source.
        label (int): Index into :data:`EVENT_SHAPE_CLASSES`.
        sensor_size (tuple[int, int]): ``(W, H)``.
        num_frames (int): Frames, evenly spaced from the start to the end
            of the motion.

    Returns:
        np.ndarray: ``num_frames x H x W`` float32 intensities in (0, 1].
    """
    width, height = sensor_size
    side = min(width, height)
    motion = EVENT_SHAPE_CLASSES[label]
    shape = EVENT_SHAPES[rng.integers(len(EVENT_SHAPES))]
    angle = rng.uniform(0, 2 * math.pi)
    steps = np.linspace(0.0, 1.0, num_frames)
    if motion in ('grow', 'shrink'):
        small = rng.uniform(0.12, 0.18) * side
        large = min(small * rng.uniform(1.6, 2.2), 0.42 * side)
        cx = rng.uniform(large, width - large)
        cy = rng.uniform(large, height - large)
        start, end = (small, large) if motion == 'grow' else (large, small)
        radius = start + (end - start) * steps
        centre_x = np.full(num_frames, cx)
        centre_y = np.full(num_frames, cy)
    else:
        r = rng.uniform(0.15, 0.25) * side
        radius = np.full(num_frames, r)
        along = width if motion in ('move_left', 'move_right') else height
        across = height if motion in ('move_left', 'move_right') else width
        # The whole travel keeps the shape's circumcircle on the sensor.
        travel = min(rng.uniform(0.25, 0.45) * along, along - 2 * r)
        first = rng.uniform(r, along - r - travel)
        path = first + travel * steps
        if motion in ('move_left', 'move_up'):
            path = along - path
        other = np.full(num_frames, rng.uniform(r, across - r))
        centre_x, centre_y = ((path, other) if motion in ('move_left',
                                                          'move_right') else
                              (other, path))
    kinds = rng.permutation(len(TEXTURES))[:2]
    background = _grey_texture(rng, height, width, rng.uniform(0.15, 0.35),
                               rng.uniform(0.3, 0.6), TEXTURES[kinds[0]])
    # The shape's texture is drawn at its largest size and scaled with it.
    ref = radius.max()
    size = 2 * int(math.ceil(ref)) + 4
    pattern = _grey_texture(rng, size, size, rng.uniform(0.7, 1.0),
                            rng.uniform(0.2, 0.45), TEXTURES[kinds[1]])

    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    centre_x = centre_x.astype(np.float32)[:, None, None]
    centre_y = centre_y.astype(np.float32)[:, None, None]
    r = radius.astype(np.float32)[:, None, None]
    normals, offsets = _edge_lines(shape, angle)
    if len(offsets):
        # The signed distance to a convex outline: the largest over the
        # edges of the distance past the edge's line.
        distance = np.full((num_frames, height, width), -np.inf, np.float32)
        for (nx, ny), offset in zip(
                normals.astype(np.float32), offsets.astype(np.float32)):
            np.maximum(
                distance, (nx * xs + ny * ys)[None] -
                (nx * centre_x + ny * centre_y + offset * r),
                out=distance)
    else:
        distance = np.hypot(xs - centre_x, ys - centre_y) - r
    coverage = np.clip(0.5 - distance, 0.0, 1.0)
    # Where the shape's texture is read, in the shape's own coordinates.
    scale = np.float32(ref) / r
    inside = _sample_bilinear(pattern, (xs - centre_x) * scale + size / 2,
                              (ys - centre_y) * scale + size / 2)
    return background + (inside - background) * coverage


def frames_to_events(frames,
                     duration_us,
                     rng,
                     threshold=0.2,
                     threshold_sigma=0.03,
                     noise_rate=0.5,
                     jitter_us=10.0,
                     eps=1e-3):
    """Turn frames into DVS events by log-intensity threshold crossings.

    See the module docstring for the model.

    Args:
        frames (np.ndarray): ``F x H x W`` intensities in (0, 1], evenly
            spaced over ``[0, duration_us]`` (F >= 2).
        duration_us (int): Time of the last frame, in microseconds.
        rng (np.random.Generator): Random source (thresholds, noise,
            jitter).
        threshold (float): Nominal ON and OFF contrast threshold (in log
            intensity).
        threshold_sigma (float): Per-pixel spread of the thresholds.
        noise_rate (float): Background-activity events per pixel and
            second.
        jitter_us (float): Standard deviation of the timestamp jitter.
        eps (float): Added to the intensity before the log.

    Returns:
        np.ndarray: The events (:data:`EVENTS_DTYPE`), sorted by ``t``.
    """
    num_frames, height, width = frames.shape
    pixels = height * width
    log = np.log(frames.reshape(num_frames, pixels).astype(np.float64) + eps)
    thresholds = np.clip(
        rng.normal(threshold, threshold_sigma, (2, pixels)), 0.01, None)
    interval = duration_us / (num_frames - 1)
    reference = log[0].copy()
    where, when, polarity = [], [], []
    for i in range(1, num_frames):
        before, now = log[i - 1], log[i]
        change = now - reference
        for on, thresh in ((True, thresholds[0]), (False, thresholds[1])):
            count = np.floor((change if on else -change) / thresh)
            fired = np.flatnonzero(count >= 1)
            if not len(fired):
                continue
            count = count[fired].astype(np.int64)
            step = thresh[fired] if on else -thresh[fired]
            pixel = np.repeat(fired, count)
            # j = 1..k within each pixel's run of events.
            j = np.arange(len(pixel)) - np.repeat(
                np.cumsum(count) - count, count) + 1
            level = reference[pixel] + j * np.repeat(step, count)
            slope = now[pixel] - before[pixel]
            fraction = np.clip(
                (level - before[pixel]) / np.where(slope == 0, 1, slope), 0, 1)
            where.append(pixel)
            when.append((i - 1 + fraction) * interval)
            polarity.append(np.full(len(pixel), on))
            reference[fired] += count * step
    noise = rng.poisson(noise_rate * pixels * duration_us * 1e-6)
    where.append(rng.integers(0, pixels, noise))
    when.append(rng.uniform(0, duration_us, noise))
    polarity.append(rng.random(noise) < 0.5)
    where = np.concatenate(where)
    when = np.concatenate(when)
    if jitter_us:
        when = when + rng.normal(0, jitter_us, len(when))
    when = np.clip(np.rint(when), 0, duration_us).astype(np.int64)
    order = np.argsort(when, kind='stable')
    events = np.empty(len(order), EVENTS_DTYPE)
    events['x'] = where[order] % width
    events['y'] = where[order] // width
    events['t'] = when[order]
    events['p'] = np.concatenate(polarity)[order]
    return events


def event_sample(seed,
                 split,
                 index,
                 sensor_size=(64, 64),
                 duration_us=100_000,
                 num_frames=32,
                 **simulator):
    """One recording of the event set and its label.

    The class cycles with ``index``, so every class has the same count.

    Args:
        seed (int): Seed of the whole set.
        split (str): ``'train'`` or ``'val'``.
        index (int): Sample index within the split.
        sensor_size (tuple[int, int]): ``(W, H)``.
        duration_us (int): Length of the recording in microseconds.
        num_frames (int): Frames rendered over the recording.
        **simulator: Passed to :func:`frames_to_events`.

    Returns:
        tuple[np.ndarray, int]: The events and the label.
    """
    rng = np.random.default_rng((seed, _SPLIT_IDS[split], index))
    label = index % len(EVENT_SHAPE_CLASSES)
    frames = motion_frames(rng, label, sensor_size, num_frames)
    return frames_to_events(frames, duration_us, rng, **simulator), label


def write_event_set(data_root,
                    num_train=1200,
                    num_val=300,
                    sensor_size=(64, 64),
                    duration_us=100_000,
                    seed=0,
                    num_frames=32,
                    threshold=0.2,
                    threshold_sigma=0.03,
                    noise_rate=0.5,
                    jitter_us=10.0):
    """Write the event set in MMPretrain's CustomDataset layout.

    ``data_root/{train,val}/<class>/<index:05d>.npz`` (each holding
    ``events``, see the module docstring) and the annotation lists
    ``data_root/meta/{train,val}.txt`` (``<class>/<index:05d>.npz
    <label>``, relative to ``data_root/<split>``). The set is built in a
    temporary folder and renamed into place with ``meta/settings.json``
    (all the arguments) last, so an interrupted write leaves no set and is
    redone; a complete set is reused, and one written with other arguments
    is refused (``ValueError`` naming the folder).

    Args:
        data_root (str): Folder of the dataset.
        num_train (int): Training recordings (spread evenly over classes).
            Counts and sizes may be Python or NumPy integers.
        num_val (int): Held-out recordings.
        sensor_size (tuple[int, int]): ``(W, H)`` in pixels.
        duration_us (int): Length of each recording in microseconds.
        seed (int): Seed of the whole set.
        num_frames (int): Frames rendered per recording.
        threshold (float): Nominal contrast threshold (log intensity).
        threshold_sigma (float): Per-pixel threshold mismatch.
        noise_rate (float): Background-activity events per pixel and
            second.
        jitter_us (float): Standard deviation of the timestamp jitter.
    """
    # counts as ints (NumPy integers too): they go into settings.json
    owner = 'write_event_set'
    num_train = check_count(owner, 'num_train', num_train)
    num_val = check_count(owner, 'num_val', num_val)
    if len(tuple(sensor_size)) != 2:
        raise ValueError(f'{owner}: sensor_size must be (W, H), got '
                         f'{sensor_size!r}')
    sensor_size = tuple(
        check_count(owner, f'sensor_size {axis}', s)
        for axis, s in zip('WH', sensor_size))
    duration_us = check_count(owner, 'duration_us', duration_us)
    seed = check_count(owner, 'seed', seed, minimum=0)
    num_frames = check_count(owner, 'num_frames', num_frames)
    simulator = dict(
        threshold=threshold,
        threshold_sigma=threshold_sigma,
        noise_rate=noise_rate,
        jitter_us=jitter_us)
    settings = dict(
        layout='events',
        classes=list(EVENT_SHAPE_CLASSES),
        num_train=num_train,
        num_val=num_val,
        sensor_size=list(sensor_size),
        duration_us=duration_us,
        seed=seed,
        num_frames=num_frames,
        **simulator)

    def write(tmp):
        for split, count in (('train', num_train), ('val', num_val)):
            for name in EVENT_SHAPE_CLASSES:
                os.makedirs(osp.join(tmp, split, name))
            lines = []
            for index in range(count):
                events, label = event_sample(seed, split, index, sensor_size,
                                             duration_us, num_frames,
                                             **simulator)
                rel = f'{EVENT_SHAPE_CLASSES[label]}/{index:05d}.npz'
                np.savez_compressed(osp.join(tmp, split, rel), events=events)
                lines.append(f'{rel} {label}\n')
            with open(osp.join(tmp, 'meta', f'{split}.txt'), 'w') as f:
                f.writelines(lines)

    _write_once(data_root, settings, write)
