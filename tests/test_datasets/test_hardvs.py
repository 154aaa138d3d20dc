"""HARDVS: the official layout read into clips of binary event frames."""
import os
import os.path as osp

import numpy as np
import pytest
import torch
from hardvs_fixture import (CHANNEL0, CHANNEL1, EDGE_PIXELS, SAMPLES,
                            frame_pixels, write_hardvs)
from mmengine.dataset import Compose
from PIL import Image

from sdt3_mm.datasets import (HARDVS, HARDVSDecode, LoadHARDVSClip,
                              RandomFlipFrames, ResizeCenterCropFrames)


@pytest.fixture
def hardvs_root(tmp_path):
    return write_hardvs(str(tmp_path / 'hardvs'), SAMPLES)


def reference_channels(path):
    """The reference's per-frame decoding, written here with torchvision
    and torch.where: Resize(256, bicubic), CenterCrop(224), ToTensor, then
    g < 0.12 and (g > 0.78 -> 0.3) > 0.3."""
    import torchvision.transforms as T
    from torchvision.transforms import InterpolationMode
    transform = T.Compose([
        T.Resize(256, interpolation=InterpolationMode.BICUBIC),
        T.CenterCrop(224),
        T.ToTensor()
    ])
    g = transform(Image.open(path).convert('L')).float()
    neg = torch.where(g < 0.12, torch.tensor(1.0), torch.tensor(0.0))
    g1 = torch.where(g > 0.78, torch.tensor(0.3), g)
    pos = torch.where(g1 > 0.3, torch.tensor(1.0), torch.tensor(0.0))
    return torch.cat([neg, pos]).numpy()


def test_reads_labels_and_sample_folders(hardvs_root):
    train = HARDVS(data_root=hardvs_root, split='train')
    test = HARDVS(data_root=hardvs_root, split='test', test_mode=True)
    assert len(train.CLASSES) == 300 and train.CLASSES[299] == 'class_299'
    # every sub-folder of a label line's folder is one sample
    assert [(osp.relpath(d['frame_dir'], hardvs_root), d['gt_label'])
            for d in train.load_data_list()] == [
                ('rawframe/action_001/dvSave-a/clip0', 0),
                ('rawframe/action_001/dvSave-a/clip1', 0),
                ('rawframe/action_300/dvSave-b/clip0', 299),
            ]
    assert len(test) == 1 and test.get_data_info(0)['gt_label'] == 1
    assert train.get_cat_ids(2) == [299]


def test_decode_exact_at_thresholds():
    pixels = np.array([EDGE_PIXELS], dtype=np.uint8)
    out = HARDVSDecode().decode(Image.fromarray(pixels))
    assert out.dtype == np.float32 and out.shape == (2, 1, len(EDGE_PIXELS))
    assert [p for p, v in zip(EDGE_PIXELS, out[0, 0]) if v] == sorted(CHANNEL0)
    assert [p for p, v in zip(EDGE_PIXELS, out[1, 0]) if v] == sorted(CHANNEL1)
    # the two channels are the reference's torch comparisons on ToTensor
    g = torch.from_numpy(pixels).float().div(255)
    assert np.array_equal(out[0], (g < 0.12).float().numpy())
    assert np.array_equal(out[1], (torch.where(g > 0.78, torch.tensor(0.3), g)
                                   > 0.3).float())


def test_test_pipeline_matches_reference_decoding(hardvs_root):
    pipeline = Compose([
        dict(type='sdt3_mm.LoadHARDVSClip', num_frames=8, test_mode=True),
        dict(type='sdt3_mm.ResizeCenterCropFrames', scale=256, crop_size=224),
        dict(type='sdt3_mm.HARDVSDecode'),
    ])
    frame_dir = osp.join(hardvs_root, 'rawframe/action_001/dvSave-a/clip0')
    results = pipeline(dict(frame_dir=frame_dir))
    img = results['img']
    assert img.dtype == np.float32 and img.shape == (8, 2, 224, 224)
    assert set(np.unique(img)) <= {0.0, 1.0}
    # deterministic centre clip of 12 frames, sorted by name: 2 .. 9
    assert results['frame_inds'] == list(range(2, 10))
    for t, i in enumerate(results['frame_inds']):
        expected = reference_channels(osp.join(frame_dir, f'{i:04d}.png'))
        assert np.array_equal(img[t], expected), t
    # both channels occur, and sub-threshold edges are in play
    assert img[:, 0].any() and img[:, 1].any()


def test_training_start_is_random_and_test_start_fixed(hardvs_root):
    frame_dir = osp.join(hardvs_root, 'rawframe/action_001/dvSave-a/clip0')
    train, test = LoadHARDVSClip(8), LoadHARDVSClip(8, test_mode=True)
    starts = set()
    for seed in range(20):
        np.random.seed(seed)
        starts.add(train(dict(frame_dir=frame_dir))['frame_inds'][0])
        assert test(dict(
            frame_dir=frame_dir))['frame_inds'] == list(range(2, 10))
    # 12 frames: starts 0 .. 4, all drawn over 20 seeds
    assert starts == set(range(5))
    np.random.seed(3)
    first = train(dict(frame_dir=frame_dir))['frame_inds']
    np.random.seed(3)
    assert train(dict(frame_dir=frame_dir))['frame_inds'] == first


def test_short_clip_is_zero_padded(hardvs_root):
    frame_dir = osp.join(hardvs_root, 'rawframe/action_001/dvSave-a/clip1')
    results = HARDVSDecode()(
        LoadHARDVSClip(8, test_mode=True)(dict(frame_dir=frame_dir)))
    img = results['img']
    assert img.shape == (8, 2, 30, 40)
    assert results['frame_inds'] == list(range(5))
    assert img[:5].any(axis=(1, 2, 3)).all()
    # padded frames are zero in both channels (not a decoded black frame)
    assert not img[5:].any()


def test_flip_is_per_frame():
    frames = [Image.fromarray(frame_pixels(0, i)) for i in range(8)]
    np.random.seed(0)
    results = RandomFlipFrames(prob=0.5)(dict(frames=list(frames)))
    flips = results['flip']
    assert any(flips) and not all(flips)
    for frame, out, flip in zip(frames, results['frames'], flips):
        expected = np.asarray(frame)[:, ::-1] if flip else np.asarray(frame)
        assert np.array_equal(np.asarray(out), expected)


def test_resize_keeps_aspect_like_torchvision():
    frame = Image.fromarray(frame_pixels(0, 0))  # 40 x 30
    out = ResizeCenterCropFrames(256, 224)(dict(frames=[frame]))
    assert out['img_shape'] == (224, 224)
    out = ResizeCenterCropFrames(256, 1000)(dict(frames=[frame]))
    # shorter side 30 -> 256, longer 40 -> int(256 * 40 / 30) = 341,
    # then padded by torchvision's center_crop to 1000
    assert out['img_shape'] == (1000, 1000)


def _write_list(root, split, text):
    with open(osp.join(root, 'list', f'{split}_label.txt'), 'w') as f:
        f.write(text)


@pytest.mark.parametrize('text, error, match', [
    ('action_001/dvSave-a 42\n', ValueError, r'train_label.txt, line 1'),
    ('\naction_001/dvSave-a 42 x\n', ValueError, r'line 2: label .x.'),
    ('action_001/dvSave-a 42 300\n', ValueError, r'outside 0 \.\. 299'),
    ('action_001/dvSave-a 42 -1\n', ValueError, r'outside 0 \.\. 299'),
    ('action_009/missing 42 3\n', FileNotFoundError,
     r'line 1: folder .*action_009/missing does not exist'),
])
def test_label_file_errors(hardvs_root, text, error, match):
    _write_list(hardvs_root, 'train', text)
    with pytest.raises(error, match=match):
        HARDVS(data_root=hardvs_root, split='train')


def test_empty_folders_are_named(hardvs_root):
    os.makedirs(osp.join(hardvs_root, 'rawframe/action_003/empty'))
    _write_list(hardvs_root, 'train', 'action_003/empty 0 2\n')
    with pytest.raises(ValueError, match=r'action_003/empty holds no sample'):
        HARDVS(data_root=hardvs_root, split='train')
    os.makedirs(osp.join(hardvs_root, 'rawframe/action_003/empty/clip0'))
    dataset = HARDVS(data_root=hardvs_root, split='train')
    with pytest.raises(ValueError, match=r'empty/clip0 holds no frame'):
        LoadHARDVSClip(8)(dataset.get_data_info(0))
    with pytest.raises(FileNotFoundError, match='val_label.txt'):
        HARDVS(data_root=hardvs_root, split='val')


def test_counts_are_numpy_integers_or_refused_by_name(hardvs_root):
    """A clip length or size computed with NumPy is a count like an int;
    what is no count (a bool, a float, a size left unchecked) is refused
    at construction, naming the option, not deep in torchvision."""
    frame_dir = osp.join(hardvs_root, 'rawframe/action_001/dvSave-a/clip1')
    pipeline = Compose([
        LoadHARDVSClip(np.int64(4), test_mode=True),
        ResizeCenterCropFrames(np.int64(64), np.int32(48)),
        HARDVSDecode()
    ])
    results = pipeline(dict(frame_dir=frame_dir))
    assert results['img'].shape == (4, 2, 48, 48)
    with pytest.raises(ValueError, match='LoadHARDVSClip: num_frames'):
        LoadHARDVSClip(True)
    with pytest.raises(ValueError, match='ResizeCenterCropFrames: scale'):
        ResizeCenterCropFrames(256.5, 224)
    with pytest.raises(ValueError, match='ResizeCenterCropFrames: crop_size'):
        ResizeCenterCropFrames(256, 0)
    with pytest.raises(ValueError, match='HARDVSDecode: the clip holds no'):
        HARDVSDecode()(dict(frames=[], num_frames=8))
