"""tools/dataset_converters/tonic_to_npz.py on tonic's own DVSGesture
reader, over a small set in DVS Gesture's extracted on-disk layout."""
import importlib.util
import os.path as osp

import numpy as np
import pytest
import tonic

from sdt3_mm.datasets import EventStreamDataset

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _tool():
    spec = importlib.util.spec_from_file_location(
        'tonic_to_npz',
        osp.join(ROOT, 'tools', 'dataset_converters', 'tonic_to_npz.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_dvs_gesture(root):
    """tonic reads ``DVSGesture/ibmGesture{Train,Test}/user<NN>_<light>/
    <label>.npy`` (rows x, y, p, t in ms) once the archive is present and
    at least 100 recordings are extracted."""
    rng = np.random.default_rng(0)
    base = root / 'DVSGesture'
    for folder, users in (('ibmGestureTrain', range(1, 11)), ('ibmGestureTest',
                                                              range(24, 34))):
        base.mkdir(parents=True, exist_ok=True)
        (base / f'{folder}.tar.gz').write_bytes(b'')
        for user in users:
            recordings = base / folder / f'user{user:02d}_led'
            recordings.mkdir(parents=True)
            for label in range(10):
                num = int(rng.integers(5, 40))
                rows = np.stack([
                    rng.integers(0, 128, num),
                    rng.integers(0, 128, num),
                    rng.integers(0, 2, num),
                    np.sort(rng.integers(0, 6000, num)),
                ], 1)
                np.save(recordings / f'{label}.npy', rows)


def test_dvs_gesture_through_tonic_into_our_data_set(tmp_path, capsys,
                                                     mmpretrain_scope):
    _write_dvs_gesture(tmp_path / 'tonic')
    out = tmp_path / 'dvs_gesture'
    _tool().main(['DVSGesture', str(tmp_path / 'tonic'), str(out)])
    assert 'DVSGesture train: 100 recordings, sensor_size (128, 128, 2)' \
        in capsys.readouterr().out

    for split, train in (('train', True), ('test', False)):
        reference = tonic.datasets.DVSGesture(
            str(tmp_path / 'tonic'), train=train)
        dataset = EventStreamDataset(
            data_root=str(out),
            data_prefix=split,
            ann_file=f'meta/{split}.txt',
            classes=str(out / 'meta' / 'classes.txt'),
            pipeline=[
                dict(type='sdt3_mm.LoadEvents', sensor_size=(128, 128, 2))
            ])
        assert len(dataset) == len(reference) == 100
        assert dataset.metainfo['classes'] == tuple(reference.classes)
        for index in (0, 37, 99):
            events, label = reference[index]
            sample = dataset[index]
            assert sample['gt_label'] == label
            for name in ('x', 'y', 't', 'p'):
                np.testing.assert_array_equal(sample['events'][name],
                                              events[name])
    assert (out / 'train' / 'Right_hand_wave').is_dir()


def test_unknown_data_set_is_named(tmp_path):
    with pytest.raises(SystemExit, match="no data set 'DVSGestur'.*NMNIST"):
        _tool().main(['DVSGestur', str(tmp_path), str(tmp_path / 'out')])


def test_unsorted_recordings_are_refused_or_sorted_stably(tmp_path):
    """A recording out of time order stops the conversion, naming the
    file it would write; ``--sort-by-time`` sorts it (stable on t)."""
    _write_dvs_gesture(tmp_path / 'tonic')
    recording = (
        tmp_path / 'tonic' / 'DVSGesture' / 'ibmGestureTrain' / 'user01_led' /
        '0.npy')
    rows = np.load(recording)
    rows[[0, -1], 3] = rows[[-1, 0], 3]  # first and last times swapped
    np.save(recording, rows)
    out = tmp_path / 'dvs_gesture'
    with pytest.raises(
            SystemExit,
            match=r'DVSGesture train: .*/train/'
            r'.*000000.npz: events are not sorted by time.*'
            r'--sort-by-time'):
        _tool().main(['DVSGesture', str(tmp_path / 'tonic'), str(out)])
    _tool().main(
        ['DVSGesture',
         str(tmp_path / 'tonic'),
         str(out), '--sort-by-time'])
    reference, _ = tonic.datasets.DVSGesture(str(tmp_path / 'tonic'))[0]
    written = np.load(next((out / 'train').glob('*/000000.npz')))['events']
    order = np.argsort(reference['t'], kind='stable')
    for name in ('x', 'y', 't', 'p'):
        np.testing.assert_array_equal(written[name], reference[name][order])
