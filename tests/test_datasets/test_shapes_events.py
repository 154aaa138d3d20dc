import json
import math
import os
import os.path as osp
from collections import Counter

import numpy as np
import pytest
import tonic

from sdt3_mm.datasets import EVENTS_DTYPE
from sdt3_mm.datasets.demo import (EVENT_SHAPE_CLASSES, event_sample,
                                   write_event_set)
from sdt3_mm.datasets.demo.shapes_events import frames_to_events

TONIC_DTYPE = tonic.io.events_struct
SMALL = dict(sensor_size=(32, 24), duration_us=50_000, num_frames=16)


def _samples(split='train', count=12, **kwargs):
    return [
        event_sample(0, split, i, **{
            **SMALL,
            **kwargs
        }) for i in range(count)
    ]


def test_events_have_tonic_layout_and_ranges():
    for events, label in _samples():
        assert events.dtype == TONIC_DTYPE == EVENTS_DTYPE
        assert len(events) > 100
        assert events['x'].min() >= 0 and events['x'].max() < 32
        assert events['y'].min() >= 0 and events['y'].max() < 24
        assert events['t'].min() >= 0 and events['t'].max() <= 50_000
        assert (np.diff(events['t']) >= 0).all()
        # Both polarities occur (noise alone gives some of each).
        assert events['p'].any() and not events['p'].all()


def test_samples_are_deterministic_and_distinct():
    first = _samples(count=6)
    again = _samples(count=6)
    for (a, la), (b, lb) in zip(first, again):
        assert la == lb and a.tobytes() == b.tobytes()
    assert [label for _, label in first] == list(range(6))
    # Another index of the same class, or another split, records
    # something else.
    seventh = event_sample(0, 'train', 6, **SMALL)[0]
    assert not np.array_equal(first[0][0], seventh)
    assert not np.array_equal(first[0][0], _samples('val', 1)[0][0])


def _polarity_centres(events):
    on = events['p']
    xy = np.stack([events['x'], events['y']], 1).astype(float)
    return xy[on].mean(0), xy[~on].mean(0)


def test_bright_shape_fires_on_at_leading_edge_off_at_trailing():
    # The shape is brighter than the background, so ON events lie ahead
    # of OFF events along the motion; growing fires ON, shrinking OFF.
    direction = dict(
        move_left=(-1, 0),
        move_right=(1, 0),
        move_up=(0, -1),
        move_down=(0, 1))
    for events, label in _samples(count=18, noise_rate=0.0):
        name = EVENT_SHAPE_CLASSES[label]
        if name in direction:
            on, off = _polarity_centres(events)
            assert np.dot(on - off, direction[name]) > 2, name
        elif name == 'grow':
            assert events['p'].mean() > 0.8
        else:
            assert events['p'].mean() < 0.2


def test_events_follow_the_motion_over_time():
    for events, label in _samples(count=18, noise_rate=0.0):
        name = EVENT_SHAPE_CLASSES[label]
        quarter = len(events) // 4
        early, late = events[:quarter], events[-quarter:]
        if name in ('move_left', 'move_right'):
            shift = late['x'].mean() - early['x'].mean()
            assert shift * (1 if name == 'move_right' else -1) > 2, name
        elif name in ('move_up', 'move_down'):
            shift = late['y'].mean() - early['y'].mean()
            assert shift * (1 if name == 'move_down' else -1) > 2, name
        else:
            centre = np.array([events['x'].mean(), events['y'].mean()])

            def spread(part):
                xy = np.stack([part['x'], part['y']], 1)
                return np.linalg.norm(xy - centre, axis=1).mean()

            ratio = spread(late) / spread(early)
            assert (ratio > 1.2) if name == 'grow' else (ratio < 0.85), name


def test_threshold_crossings_are_interpolated_in_log_intensity():
    # One pixel brightens by 0.5 in log intensity between two frames 1 ms
    # apart: with exact thresholds of 0.2 it crosses twice, at 0.4 and 0.8
    # of the interval, and its reference moves up by 0.4. Dimming to 0.1
    # below the start (0.6 down) crosses the reference minus 0.2 and 0.4 at
    # 0.3 / 0.6 and 0.5 / 0.6 of the next interval.
    eps = 1e-3
    low = 0.1
    levels = [(low + eps) * math.exp(step) - eps for step in (0, 0.5, -0.1)]
    frames = np.full((3, 2, 3), 0.5)
    frames[:, 1, 2] = levels
    events = frames_to_events(
        frames,
        2000,
        np.random.default_rng(0),
        threshold_sigma=0.0,
        noise_rate=0.0,
        jitter_us=0.0,
        eps=eps)
    assert events['x'].tolist() == [2] * 4 and events['y'].tolist() == [1] * 4
    assert events['p'].tolist() == [True, True, False, False]
    assert events['t'].tolist() == [400, 800, 1500, 1833]


def test_noise_rate_on_a_static_scene():
    frames = np.full((8, 40, 50), 0.3)
    rng = np.random.default_rng(1)
    quiet = frames_to_events(frames, 100_000, rng, noise_rate=0.0)
    assert len(quiet) == 0
    rates = []
    for seed in range(4):
        events = frames_to_events(
            frames, 100_000, np.random.default_rng(seed), noise_rate=2.0)
        rates.append(len(events))
        assert 0.35 < events['p'].mean() < 0.65
        assert (np.diff(events['t']) >= 0).all()
    # 2 Hz x 2000 pixels x 0.1 s = 400 per recording (Poisson).
    assert abs(np.mean(rates) - 400) < 5 * math.sqrt(400 / 4)


def test_write_event_set_layout_reuse_and_mismatch(tmp_path):
    root = str(tmp_path / 'events')
    kwargs = dict(num_train=12, num_val=6, **SMALL)
    write_event_set(root, **kwargs)
    for split, count in (('train', 12), ('val', 6)):
        with open(osp.join(root, 'meta', f'{split}.txt')) as f:
            lines = f.read().splitlines()
        assert len(lines) == count
        labels = Counter()
        for line in lines:
            rel, label = line.split(' ')
            name, file = rel.split('/')
            assert EVENT_SHAPE_CLASSES[int(label)] == name
            assert file.endswith('.npz') and len(file) == len('00000.npz')
            labels[int(label)] += 1
            with np.load(osp.join(root, split, rel)) as data:
                assert list(data.keys()) == ['events']
                assert data['events'].dtype == TONIC_DTYPE
        # Every class equally often.
        assert set(labels.values()) == {count // 6}
        assert sorted(os.listdir(osp.join(root, split))) == \
            sorted(EVENT_SHAPE_CLASSES)
    assert lines[0] == 'move_left/00000.npz 0'
    with np.load(osp.join(root, 'train', 'grow', '00004.npz')) as data:
        assert data['events'].tobytes() == event_sample(
            0, 'train', 4, **SMALL)[0].tobytes()
    with open(osp.join(root, 'meta', 'settings.json')) as f:
        assert json.load(f)['sensor_size'] == [32, 24]
    # The same arguments reuse the set (not rewritten) ...
    stamp = os.stat(osp.join(root, 'meta', 'settings.json')).st_mtime_ns
    write_event_set(root, **kwargs)
    assert os.stat(osp.join(root, 'meta',
                            'settings.json')).st_mtime_ns == stamp
    # ... and other ones are refused, naming the folder.
    with pytest.raises(ValueError, match=f'{root} holds a demo set'):
        write_event_set(root, **{**kwargs, 'num_train': 18})
    with pytest.raises(ValueError, match='delete it or choose another'):
        write_event_set(root, **{**kwargs, 'noise_rate': 1.0})


def test_write_event_set_takes_numpy_counts(tmp_path):
    """Counts computed with NumPy are counts (they were written into
    settings.json raw: a TypeError); what is no count is named."""
    root = str(tmp_path / 'events')
    write_event_set(
        root,
        num_train=np.int64(6),
        num_val=np.int32(6),
        sensor_size=np.array([32, 24]),
        duration_us=np.int64(50_000),
        num_frames=np.int64(16))
    with open(osp.join(root, 'meta', 'settings.json')) as f:
        settings = json.load(f)
    assert settings['num_train'] == 6 and settings['sensor_size'] == [32, 24]
    # the same set, given as Python ints, is reused
    write_event_set(root, num_train=6, num_val=6, **SMALL)
    with pytest.raises(ValueError, match='write_event_set: num_val must be'):
        write_event_set(str(tmp_path / 'other'), num_val=True)
    with pytest.raises(ValueError, match='write_event_set: sensor_size H'):
        write_event_set(str(tmp_path / 'other'), sensor_size=(32, 0))
