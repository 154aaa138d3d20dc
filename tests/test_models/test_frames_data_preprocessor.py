"""FramesDataPreprocessor: B x T x C x H x W batches with MMPretrain's
label handling and batch augmentations, without treating time as colour
(MMPretrain's ClsDataPreprocessor reverses a size-3 dimension 1 under
to_rgb, i.e. three frames)."""
import pytest
import torch
from mmpretrain.models.utils import ClsDataPreprocessor
from mmpretrain.structures import DataSample

from sdt3_mm.models import FramesDataPreprocessor


def _data(batch=4, frames=3, channels=2, size=16):
    torch.manual_seed(0)
    inputs = [torch.rand(frames, channels, size, size) for _ in range(batch)]
    samples = [DataSample().set_gt_label(i % 5) for i in range(batch)]
    return dict(inputs=inputs, data_samples=samples)


def test_frames_keep_their_order_and_values():
    data = _data()
    out = FramesDataPreprocessor()(data)
    assert torch.equal(out['inputs'], torch.stack(data['inputs']))
    # the stock preprocessor with to_rgb plays three frames backwards
    stock = ClsDataPreprocessor(to_rgb=True)(_data())['inputs']
    assert torch.equal(stock, torch.stack(data['inputs']).flip(1))


def test_per_channel_normalisation_for_every_frame():
    data = _data()
    out = FramesDataPreprocessor(mean=[0.5, 0.25], std=[2., 4.])(data)
    stacked = torch.stack(data['inputs'])
    expected = (stacked - torch.tensor([0.5, 0.25]).view(2, 1, 1)) / \
        torch.tensor([2., 4.]).view(2, 1, 1)
    assert torch.allclose(out['inputs'], expected)


def test_cutmix_cuts_one_box_through_every_frame_and_channel():
    torch.manual_seed(3)
    preprocessor = FramesDataPreprocessor(
        num_classes=5,
        batch_augments=dict(augments=dict(type='CutMix', alpha=1.)))
    data = _data()
    stacked = torch.stack(data['inputs'])
    out = preprocessor(data, training=True)
    mixed = out['inputs']
    assert mixed.shape == stacked.shape
    changed = mixed != stacked  # continuous values: changed means pasted
    per_pixel = changed.flatten(1, 2)  # B x (T*C) x H x W
    # the same box in every frame and channel of a sample
    assert torch.equal(per_pixel.any(1), per_pixel.all(1))
    assert changed.any()
    scores = torch.stack([s.gt_score for s in out['data_samples']])
    assert torch.allclose(scores.sum(1), torch.ones(4))


def test_pads_height_and_width():
    out = FramesDataPreprocessor(pad_size_divisor=32)(_data(size=20))
    assert out['inputs'].shape == (4, 3, 2, 32, 32)


def test_images_and_mismatched_settings_are_refused():
    with pytest.raises(ValueError, match='T x C x H x W frames'):
        FramesDataPreprocessor()(dict(inputs=torch.zeros(2, 3, 8, 8)))
    with pytest.raises(ValueError, match='one shape'):
        FramesDataPreprocessor()(
            dict(inputs=[torch.zeros(3, 2, 8, 8),
                         torch.zeros(4, 2, 8, 8)]))
    with pytest.raises(ValueError, match='both mean and std'):
        FramesDataPreprocessor(mean=[0., 0.])
    with pytest.raises(ValueError, match='have 3 channels, the frames 2'):
        FramesDataPreprocessor(mean=[0.] * 3, std=[1.] * 3)(_data())


def test_builds_from_a_config_in_mmpretrain_scope():
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(
            dict(
                type='ImageClassifier',
                data_preprocessor=dict(
                    type='sdt3_mm.FramesDataPreprocessor', num_classes=5),
                backbone=dict(
                    type='sdt3_mm.ESpikeFormer',
                    arch='t',
                    in_channels=2,
                    average_time=False),
                head=dict(
                    type='sdt3_mm.SpikeClsHead',
                    num_classes=5,
                    in_channels=128)))
    model.eval()
    with torch.no_grad():
        predictions = model.test_step(_data(batch=2, size=32))
    assert len(predictions) == 2
    assert predictions[0].pred_score.shape == (5, )
