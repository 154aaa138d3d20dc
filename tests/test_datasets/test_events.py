"""Event streams: reading ``.npz`` recordings, and the transforms against
tonic (the neuromorphic data library) where tonic defines the result."""
import zipfile

import numpy as np
import pytest
import tonic  # the `events` extra, installed by tools/ensure_env.sh
import torch
from mmengine.dataset import pseudo_collate

from sdt3_mm.datasets import (EVENTS_DTYPE, EventsToFrames, EventStreamDataset,
                              LoadEvents, RandomDropEvents, RandomFlipEvents,
                              ResizeFrames, event_slices, load_events,
                              write_event_file)
from sdt3_mm.models import FramesDataPreprocessor

SENSOR = (20, 12, 2)


def _stream(num=3000, seed=0, duration=100_003):
    rng = np.random.default_rng(seed)
    return tonic.io.make_structured_array(
        rng.integers(0, SENSOR[0], num), rng.integers(0, SENSOR[1], num),
        np.sort(rng.integers(7, 7 + duration, num)),
        rng.integers(0, 2, num).astype(bool))


def _frames(events, **kwargs):
    results = dict(events=events, sensor_size=SENSOR)
    return EventsToFrames(**kwargs)(results)['img']


@pytest.mark.parametrize('num_frames', [1, 5, 8])
def test_time_bins_are_tonics_with_the_remainder_in_the_last(num_frames):
    events = _stream()
    ours = _frames(events, num_frames=num_frames, by='time')
    theirs = tonic.transforms.ToFrame(
        sensor_size=SENSOR, n_time_bins=num_frames)(
            events)
    assert ours.shape == theirs.shape == (num_frames, 2, 12, 20)
    np.testing.assert_array_equal(ours[:-1], theirs[:-1])
    # tonic's windows end at t0 + T * w <= t_last: the rest it drops
    width = (events['t'][-1] - events['t'][0]) // num_frames
    rest = events[events['t'] >= events['t'][0] + num_frames * width]
    assert len(rest) >= 1  # at least the last event
    rest_frame = _frames(rest, num_frames=1, by='count')[0]
    np.testing.assert_array_equal(ours[-1], theirs[-1] + rest_frame)
    assert ours.sum() == len(events)


def test_event_bins_are_tonics_with_the_remainder_in_the_last():
    events = _stream(num=3000)
    # 3000 = 8 x 375: nothing left over, the frames are tonic's exactly
    np.testing.assert_array_equal(
        _frames(events, num_frames=8, by='count'),
        tonic.transforms.ToFrame(sensor_size=SENSOR, n_event_bins=8)(events))
    events = _stream(num=3005)
    ours = _frames(events, num_frames=8, by='count')
    theirs = tonic.transforms.ToFrame(
        sensor_size=SENSOR, n_event_bins=8)(
            events)
    np.testing.assert_array_equal(ours[:-1], theirs[:-1])
    assert ours[-1].sum() == theirs[-1].sum() + 5
    assert ours.sum() == 3005


def test_polarity_channels_and_short_streams():
    events = tonic.io.make_structured_array([3, 3, 4], [1, 1, 2], [0, 1, 2],
                                            [True, True, False])
    frames = _frames(events, num_frames=4, by='time')  # 3 time units < 4
    # ON (p=1) counts in channel 1, OFF in channel 0, as in tonic
    assert frames[0, 1, 1, 3] == 1 and frames[1, 1, 1, 3] == 1
    assert frames[2, 0, 2, 4] == 1 and frames.sum() == 3
    empty = _frames(events[:0], num_frames=4, by='count')
    assert empty.shape == (4, 2, 12, 20) and not empty.any()


@pytest.mark.parametrize('options', [
    dict(time_window=7000),
    dict(time_window=7000, overlap=1500),
    dict(time_window=7000, include_incomplete=True),
    dict(time_window=7000.5, overlap=2500.25, include_incomplete=True),
    dict(time_window=7000, start_time=0, end_time=120_000),
    dict(event_count=400),
    dict(event_count=400, overlap=150, include_incomplete=True),
    dict(event_count=5000),
])
def test_time_window_and_event_count_are_tonics(options):
    """tonic's variable-length slicings, frame for frame (the number of
    frames depends on the recording, as in tonic)."""
    events = _stream()
    ours = _frames(events, **options)
    theirs = tonic.transforms.ToFrame(sensor_size=SENSOR, **options)(events)
    assert ours.shape == theirs.shape and len(ours) > 0
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize('by,tonic_option', [('time', 'n_time_bins'),
                                             ('count', 'n_event_bins')])
@pytest.mark.parametrize('overlap', [0.1, 0.5])
def test_overlapping_bins_are_tonics_with_the_remainder_in_the_last(
        by, tonic_option, overlap):
    events = _stream()
    ours = _frames(events, num_frames=8, by=by, overlap=overlap)
    theirs = tonic.transforms.ToFrame(
        sensor_size=SENSOR, **{
            tonic_option: 8,
            'overlap': overlap
        })(
            events)
    assert ours.shape == theirs.shape == (8, 2, 12, 20)
    np.testing.assert_array_equal(ours[:-1], theirs[:-1])
    # an event counts in every frame holding it: more counts than events
    assert ours.sum() > len(events)
    # the last frame: tonic's last slice's start to the end of the stream
    start = event_slices(events, num_frames=8, by=by, overlap=overlap)[-1, 0]
    np.testing.assert_array_equal(
        ours[-1],
        _frames(events[start:], num_frames=1, by='count')[0])
    assert ours[-1].sum() >= theirs[-1].sum()


def test_slicing_options_are_checked_by_name():
    assert EventsToFrames(num_frames=np.int64(5)).num_frames == 5
    assert EventsToFrames(event_count=np.int32(9)).event_count == 9
    for kwargs, match in [
        (dict(),
         'give exactly one of num_frames, time_window and event_count'),
        (dict(num_frames=4,
              time_window=10), r"give .*got \['num_frames', 'ti"),
        (dict(num_frames=True), 'num_frames must be a positive integer'),
        (dict(num_frames=4.0), 'num_frames must be a positive integer'),
        (dict(num_frames=4, by='space'), 'by must be "time" or "count"'),
        (dict(num_frames=4, overlap=1), 'overlap .a fraction of a frame'),
        (dict(num_frames=4, include_incomplete=True),
         'include_incomplete does not go with num_frames'),
        (dict(event_count=5, start_time=0), 'start_time does not go with'),
        (dict(time_window=10, by='time'), 'by goes with num_frames only'),
        (dict(time_window=0), 'time_window must be positive'),
        (dict(time_window=10, overlap=10), r'overlap \(time units'),
        (dict(time_window=10, start_time=5, end_time=1), 'end_time 1 is'),
        (dict(event_count=5, overlap=5), r'overlap .* below event_count 5'),
        (dict(event_count=5, overlap=1.5), r'overlap \(events'),
        (dict(event_count=5, include_incomplete=1), 'include_incomplete must'),
    ]:
        with pytest.raises(ValueError, match=f'EventsToFrames: {match}'):
            EventsToFrames(**kwargs)


def test_direct_calls_refuse_unsorted_and_outside_events():
    """Called without LoadEvents, EventsToFrames checks the stream as a
    file is checked: tonic's ToFrame would bin unsorted times (with t[0]
    the minimum) wrongly and wrap x >= W into the next row, silently."""
    events = _stream(num=200)
    results = dict(events=events, sensor_size=SENSOR, img_path='rec.npz')
    shuffled = events.copy()
    shuffled[1:] = np.random.default_rng(0).permutation(events[1:])
    assert shuffled['t'][0] == shuffled['t'].min()
    with pytest.raises(ValueError, match=r'rec.npz: events are not sorted'):
        EventsToFrames(num_frames=4)(dict(results, events=shuffled))
    for name, value, match in [
        ('x', 20, 'x values 0..20 reach outside'),
        ('y', -1, r'y coordinates must be in 0..32767 .*-1..11')
    ]:
        bad = events.copy()
        bad[name][7] = value
        with pytest.raises(ValueError, match=f'rec.npz: {match}'):
            EventsToFrames(num_frames=4)(dict(results, events=bad))
    with pytest.raises(ValueError, match='EventsToFrames: the sensor has one'):
        EventsToFrames(time_window=1000)(
            dict(events=events, sensor_size=(20, 12, 1)))
    # tonic's own layouts (other integer types) are read, values checked
    wide = np.zeros(
        len(events), [('t', np.int64), ('x', np.int64), ('y', np.int32),
                      ('p', np.int8)])
    for name in ('x', 'y', 't', 'p'):
        wide[name] = events[name]
    np.testing.assert_array_equal(
        _frames(wide, num_frames=4), _frames(events, num_frames=4))
    wide['x'][3] = 65546  # would be x = 10 in int16
    with pytest.raises(ValueError, match='x coordinates must be in 0..32767'):
        _frames(wide, num_frames=4)


@pytest.mark.parametrize('drop_prob', [0.3, (0.1, 0.6)])
def test_drop_is_tonics_drop_event(drop_prob):
    events = _stream()
    np.random.seed(5)
    ours = RandomDropEvents(drop_prob)(dict(events=events))['events']
    np.random.seed(5)
    theirs = tonic.transforms.DropEvent(p=drop_prob)(events)
    np.testing.assert_array_equal(ours, theirs)
    assert 0 < len(ours) < len(events)


def test_flip_is_tonics_and_maps_direction_labels():
    events = _stream()
    flip = RandomFlipEvents(prob=1., label_map={0: 1, 1: 0})
    results = flip(dict(events=events, sensor_size=SENSOR, gt_label=1))
    theirs = tonic.transforms.RandomFlipLR(sensor_size=SENSOR, p=1.)(events)
    np.testing.assert_array_equal(results['events'], theirs)
    assert results['gt_label'] == 0 and results['flip']
    kept = flip(dict(events=events, sensor_size=SENSOR, gt_label=4))
    assert kept['gt_label'] == 4
    vertical = RandomFlipEvents(
        prob=1., direction='vertical')(
            dict(events=events, sensor_size=SENSOR, gt_label=1))
    theirs = tonic.transforms.RandomFlipUD(sensor_size=SENSOR, p=1.)(events)
    np.testing.assert_array_equal(vertical['events'], theirs)
    assert vertical['gt_label'] == 1
    untouched = RandomFlipEvents(prob=0.)(
        dict(events=events, sensor_size=SENSOR, gt_label=1))
    assert untouched['events'] is events and not untouched['flip']
    with pytest.raises(ValueError, match='both ways'):
        RandomFlipEvents(label_map={0: 1})


def test_resize_area_averages_counts():
    frames = np.zeros((2, 2, 4, 6), np.float32)
    frames[1, 0, :2, :2] = [[1, 2], [3, 6]]
    results = ResizeFrames(scale=(3, 2))(dict(img=frames, img_shape=(4, 6)))
    assert results['img'].shape == (2, 2, 2, 3)
    assert results['img'][1, 0, 0, 0] == 3 and results['img'].sum() == 3
    assert results['img_shape'] == (2, 3)


def test_files_in_both_layouts_and_their_errors(tmp_path):
    events = _stream(num=50)
    write_event_file(tmp_path / 'a.npz', events)
    np.savez(
        tmp_path / 'b.npz',
        t=events['t'],
        x=events['x'],
        y=events['y'],
        p=events['p'].astype(np.int8))
    for name in ('a.npz', 'b.npz'):
        loaded = load_events(tmp_path / name)
        assert loaded.dtype == EVENTS_DTYPE
        np.testing.assert_array_equal(loaded, events)

    np.savez(tmp_path / 'bad.npz', t=events['t'], x=events['x'])
    with pytest.raises(ValueError, match='bad.npz.*arrays "x", "y", "t", "p"'):
        load_events(tmp_path / 'bad.npz')
    np.savez(
        tmp_path / 'pm.npz',
        t=events['t'],
        x=events['x'],
        y=events['y'],
        p=np.where(events['p'], 1, -1))
    with pytest.raises(ValueError, match='pm.npz: polarities'):
        load_events(tmp_path / 'pm.npz')

    # what the layout cannot hold is refused, not wrapped or cast
    with pytest.raises(ValueError, match='c.npz: polarities must be 0'):
        write_event_file(tmp_path / 'c.npz',
                         dict(x=[1], y=[1], t=[0], p=np.array([-1])))
    with pytest.raises(ValueError, match='d.npz: x coordinates must be in'):
        write_event_file(tmp_path / 'd.npz',
                         dict(x=[40000], y=[1], t=[0], p=[1]))
    with pytest.raises(ValueError, match='e.npz: y coordinates must be in'):
        write_event_file(tmp_path / 'e.npz', dict(x=[1], y=[-1], t=[0], p=[1]))
    shuffled = events[::-1]
    with pytest.raises(ValueError, match='f.npz: events are not sorted'):
        write_event_file(tmp_path / 'f.npz', shuffled)
    ties = dict(x=[1, 2, 3, 4], y=[0, 0, 0, 0], t=[5, 3, 5, 3], p=[1] * 4)
    write_event_file(tmp_path / 'f.npz', ties, sort_by_time=True)
    sorted_ = load_events(tmp_path / 'f.npz')
    assert sorted_['t'].tolist() == [3, 3, 5, 5]
    assert sorted_['x'].tolist() == [2, 4, 1, 3]  # stable

    load = LoadEvents(sensor_size=SENSOR)
    np.savez(tmp_path / 'unsorted.npz', events=shuffled)
    with pytest.raises(ValueError, match='unsorted.npz.*not sorted'):
        load(dict(img_path=str(tmp_path / 'unsorted.npz')))
    with pytest.raises(
            ValueError, match='a.npz: x values 0..19 reach outside'):
        LoadEvents(sensor_size=(10, 12, 2))(
            dict(img_path=str(tmp_path / 'a.npz')))
    with pytest.raises(ValueError, match='one polarity'):
        LoadEvents(sensor_size=(20, 12, 1))(
            dict(img_path=str(tmp_path / 'a.npz')))


def test_files_that_do_not_fit_are_refused_naming_the_file(tmp_path):
    """Nothing cast, wrapped or left to a raw NumPy error: each message
    names the file and what is wrong with it."""
    one = dict(y=np.array([1]), t=np.array([0]), p=np.array([1]))

    def write(name, **arrays):
        np.savez(tmp_path / name, **arrays)
        return tmp_path / name

    cases = [
        (write('wraps.npz', x=np.array([65546], np.int32), **one),
         r'wraps.npz: x coordinates must be in 0..32767 .*65546'),
        (write('big.npz', x=np.array([40000], np.int64),
               **one), r'big.npz: x coordinates must be in 0..32767 .*40000'),
        (write('neg.npz', x=np.array([-3]),
               **one), r'neg.npz: x coordinates must be in 0..32767 .*-3'),
        (write(
            'late.npz',
            x=np.array([1]),
            y=np.array([1]),
            t=np.array([2**63], np.uint64),
            p=np.array([1])), r'late.npz: t times must be in'),
        (write('obj.npz', x=np.array([1, 'a'], object), **one),
         r'obj.npz: member "x" cannot be read as a numeric array'),
        (write('float.npz', x=np.array([1.5]),
               **one), r'float.npz: field x must hold integers'),
    ]
    (tmp_path / 'garbage.npz').write_bytes(b'not an archive at all')
    cases.append((tmp_path / 'garbage.npz',
                  r'garbage.npz: not a readable .npz archive'))
    with zipfile.ZipFile(tmp_path / 'member.npz', 'w') as archive:
        for name in ('x', 'y', 't', 'p'):
            archive.writestr(f'{name}.npy', b'plain bytes')
    cases.append((tmp_path / 'member.npz', r'member.npz: member "x" is not a'))
    (tmp_path / 'cut.npz').write_bytes(
        (tmp_path / 'wraps.npz').read_bytes()[:60])
    cases.append((tmp_path / 'cut.npz', r'cut.npz: not a readable .npz'))
    np.save(tmp_path / 'one.npy', _stream(num=5))
    cases.append((tmp_path / 'one.npy', r'one.npy: holds one array'))
    for path, match in cases:
        with pytest.raises(ValueError, match=match):
            load_events(path)
    with pytest.raises(FileNotFoundError):
        load_events(tmp_path / 'absent.npz')


def test_counts_may_be_numpy_integers():
    load = LoadEvents(sensor_size=np.array([20, 12, 2]))
    assert load.sensor_size == (20, 12, 2)
    assert all(type(s) is int for s in load.sensor_size)
    frames = np.zeros((2, 2, 4, 6), np.float32)
    resize = ResizeFrames(scale=(np.int64(3), np.int32(2)))
    assert resize(dict(img=frames))['img'].shape == (2, 2, 2, 3)
    with pytest.raises(ValueError, match='ResizeFrames: scale w must be'):
        ResizeFrames(scale=(3.0, 2))
    with pytest.raises(ValueError, match='LoadEvents: sensor_size P must'):
        LoadEvents(sensor_size=(20, 12, True))


def test_a_folder_of_recordings_trains_as_frames(tmp_path, mmpretrain_scope):
    """Folder layout -> pipeline -> frames -> FramesDataPreprocessor."""
    for label, name in enumerate(['left', 'right', 'still']):
        (tmp_path / name).mkdir()
        for i in range(2):
            write_event_file(tmp_path / name / f'{i}.npz',
                             _stream(num=200, seed=3 * label + i))
    pipeline = [
        dict(type='sdt3_mm.LoadEvents', sensor_size=SENSOR),
        dict(type='sdt3_mm.RandomDropEvents', drop_prob=(0., 0.2)),
        dict(type='sdt3_mm.RandomFlipEvents', label_map={
            0: 1,
            1: 0
        }),
        dict(type='sdt3_mm.EventsToFrames', num_frames=4),
        dict(type='sdt3_mm.ResizeFrames', scale=(10, 6)),
        dict(type='sdt3_mm.BinarizeFrames'),
        dict(type='PackInputs'),
    ]
    dataset = EventStreamDataset(data_root=str(tmp_path), pipeline=pipeline)
    assert dataset.metainfo['classes'] == ('left', 'right', 'still')
    assert [dataset.get_data_info(i)['gt_label']
            for i in range(6)] == [0, 0, 1, 1, 2, 2]
    batch = pseudo_collate([dataset[i] for i in range(6)])
    assert batch['inputs'][0].shape == (4, 2, 6, 10)
    assert set(torch.unique(batch['inputs'][0]).tolist()) <= {0., 1.}
    data = FramesDataPreprocessor()(batch, training=True)
    assert data['inputs'].shape == (6, 4, 2, 6, 10)
