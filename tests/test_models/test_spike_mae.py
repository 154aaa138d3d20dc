"""The spike-masked autoencoder: sparse masking, loss, pretraining step,
pretrain -> fine-tune weights."""
import copy

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from sdt3_mm.models import ESpikeFormer
from sdt3_mm.models.selfsup import sparse_batch_norm

ARCH = dict(family='large', embed_dims=[32, 64, 128], depth=2, rep_conv=True)


def _spike_mae(mask_ratio=0.5):
    from mmpretrain.registry import MODELS
    cfg = dict(
        type='sdt3_mm.SpikeMAE',
        mask_ratio=mask_ratio,
        backbone=dict(type='sdt3_mm.ESpikeFormer', arch=ARCH),
        neck=dict(
            type='sdt3_mm.SpikeMAEDecoder',
            in_channels=128,
            embed_dims=64,
            depth=1,
            num_heads=2),
        head=dict(
            type='MAEPretrainHead',
            norm_pix=True,
            patch_size=16,
            loss=dict(type='PixelReconstructionLoss', criterion='L2')),
        data_preprocessor=dict(
            type='SelfSupDataPreprocessor',
            mean=[127.5] * 3,
            std=[64.] * 3,
            to_rgb=True))
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg)
    model.init_weights()
    return model


@pytest.mark.parametrize('mode', ['train', 'eval'])
def test_masked_pixels_never_reach_visible_outputs(mode):
    model = _spike_mae()
    images = torch.randn(2, 3, 64, 64)
    visible = model.random_visible(images)
    assert visible.sum().item() == 2 * 8  # 16 patches, half masked
    row, col = (visible[0] == 0).nonzero()[0].tolist()
    changed = images.clone()
    changed[0, :, row * 16 + 3, col * 16 + 5] += 10.
    outputs = []
    for x in (images, changed):
        # a fresh copy each time: train-mode BN updates its statistics
        encoder = copy.deepcopy(model)
        getattr(encoder, mode)()
        with torch.no_grad():
            outputs.append(encoder.encode(x, visible))
    assert torch.equal(outputs[0], outputs[1])
    assert outputs[0].abs().sum() > 0
    # masked tokens stay exactly zero
    assert (outputs[0] * (1 - visible).unsqueeze(1)).abs().max() == 0


def test_sparse_batch_norm_uses_visible_positions_only():
    bn = torch.nn.BatchNorm2d(3)
    x = torch.randn(2, 3, 4, 4)
    visible = torch.zeros(2, 1, 4, 4)
    visible[:, :, :2] = 1
    y = sparse_batch_norm(bn, x, visible)
    reference = torch.nn.BatchNorm2d(3)
    expected = reference(x[:, :, :2])
    assert torch.allclose(y[:, :, :2], expected, atol=1e-5)
    assert y[:, :, 2:].abs().max() == 0
    assert torch.allclose(bn.running_mean, reference.running_mean)
    assert torch.allclose(bn.running_var, reference.running_var)


def test_loss_only_on_masked_patches():
    model = _spike_mae()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        pred, visible = model.reconstruct(images)
        masked = 1 - visible.flatten(1)
        loss = model.head.loss(pred, images, masked)
        moved = pred + 5 * visible.flatten(1).unsqueeze(-1)
        assert model.head.loss(moved, images, masked) == loss
        moved = pred + 5 * masked.unsqueeze(-1)
        assert model.head.loss(moved, images, masked) > loss


def test_one_pretraining_step_moves_the_encoder():
    model = _spike_mae()
    optim_wrapper = build_optim_wrapper(
        model, dict(optimizer=dict(type='AdamW', lr=1e-3)))
    data = dict(
        inputs=torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8),
        data_samples=None)
    stem = model.backbone.downsample_layers[0].conv.weight.detach().clone()
    losses = model.train_step(data, optim_wrapper)
    assert torch.isfinite(losses['loss'])
    assert not torch.equal(model.backbone.downsample_layers[0].conv.weight,
                           stem)


def test_pretrained_encoder_loads_into_espikeformer(tmp_path):
    model = _spike_mae()
    path = str(tmp_path / 'spike_mae.pth')
    torch.save(dict(state_dict=model.state_dict()), path)
    encoder = ESpikeFormer(
        ARCH,
        init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone.'))
    encoder.init_weights()
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(encoder.state_dict()[key], value), key


@pytest.mark.parametrize('shape, message', [((1, 3, 40, 64), 'whole 16'),
                                            ((1, 3, 64, 64), None)])
def test_patch_grid_is_checked(shape, message):
    model = _spike_mae()
    if message is None:
        assert model.random_visible(torch.zeros(shape)).shape == (1, 4, 4)
    else:
        with pytest.raises(ValueError, match=message):
            model.random_visible(torch.zeros(shape))


def test_bad_mask_ratio_is_refused():
    with pytest.raises(ValueError, match='mask_ratio must be in'):
        _spike_mae(mask_ratio=1.0)
