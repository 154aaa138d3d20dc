"""The spike-masked autoencoder: sparse masking (a backbone converted at
build time, with_cp included), loss, pretraining step, pretrain -> fine-tune
weights."""
import copy

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from sdt3_mm.models import ESpikeFormer
from sdt3_mm.models.selfsup import (MaskConvOutput, MaskedBatchNorm1d,
                                    MaskedBatchNorm2d, sparse_batch_norm)

ARCH = dict(family='large', embed_dims=[32, 64, 128], depth=2, rep_conv=True)


def _spike_mae(mask_ratio=0.5, with_cp=False):
    from mmpretrain.registry import MODELS
    cfg = dict(
        type='sdt3_mm.SpikeMAE',
        mask_ratio=mask_ratio,
        backbone=dict(type='sdt3_mm.ESpikeFormer', arch=ARCH, with_cp=with_cp),
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


@pytest.mark.parametrize('momentum', [0.1, None])
def test_sparse_batch_norm_uses_visible_positions_only(momentum):
    bn = torch.nn.BatchNorm2d(3, momentum=momentum)
    reference = torch.nn.BatchNorm2d(3, momentum=momentum)
    visible = torch.zeros(2, 1, 4, 4)
    visible[:, :, :2] = 1
    for _ in range(2):  # momentum None: a cumulative average
        x = torch.randn(2, 3, 4, 4)
        y = sparse_batch_norm(bn, x, visible)
        expected = reference(x[:, :, :2])
        assert torch.allclose(y[:, :, :2], expected, atol=1e-5)
        assert y[:, :, 2:].abs().max() == 0
    assert torch.allclose(bn.running_mean, reference.running_mean)
    assert torch.allclose(bn.running_var, reference.running_var)
    assert bn.num_batches_tracked == reference.num_batches_tracked == 2


def test_sparse_batch_norm_under_autocast_keeps_dtypes():
    bn = torch.nn.BatchNorm2d(3)
    x = torch.randn(2, 3, 4, 4).bfloat16()
    visible = torch.ones(2, 1, 4, 4)
    visible[:, :, 2:] = 0
    with torch.autocast('cpu', dtype=torch.bfloat16):
        y = sparse_batch_norm(bn, x, visible)
    # as nn.BatchNorm2d: the input's dtype out, float32 statistics
    assert y.dtype == torch.bfloat16
    assert bn.running_mean.dtype == bn.running_var.dtype == torch.float32
    assert y[:, :, 2:].abs().max() == 0


def test_backbone_is_converted_with_its_keys_unchanged():
    model = _spike_mae()
    norms = [
        m for m in model.backbone.modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
    ]
    convs = [
        m for m in model.backbone.modules()
        if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d))
    ]
    assert norms and all(
        isinstance(m, (MaskedBatchNorm1d, MaskedBatchNorm2d)) for m in norms)
    assert all(m.sparse_masking is model.sparse_masking for m in norms)
    assert convs and all(
        sum(isinstance(h, MaskConvOutput)
            for h in m._forward_hooks.values()) == 1 for m in convs)
    plain = ESpikeFormer(ARCH)
    expected = {k: v.shape for k, v in plain.state_dict().items()}
    # after a masked step too: the conversion adds no state of its own
    model.train()
    model.loss(torch.randn(2, 3, 64, 64), None)['loss'].backward()
    state = model.backbone.state_dict()
    assert {k: v.shape for k, v in state.items()} == expected
    assert list(state) == list(plain.state_dict())
    plain.load_state_dict(state, strict=True)
    for key, value in state.items():
        assert torch.equal(plain.state_dict()[key], value), key
    assert model.backbone.downsample_layers[1].bn.weight.grad is not None


def test_with_cp_trains_as_without():
    results = []
    for with_cp in (False, True):
        model = _spike_mae(with_cp=with_cp)
        assert model.backbone.with_cp is with_cp
        model.train()
        torch.manual_seed(1)  # same images, same mask
        loss = model.loss(torch.randn(2, 3, 64, 64), None)['loss']
        loss.backward()
        grads = {
            name: param.grad.clone()
            for name, param in model.named_parameters()
            if param.grad is not None
        }
        results.append((loss.detach(), grads, model.state_dict()))
    (loss, grads, state), (cp_loss, cp_grads, cp_state) = results
    assert torch.equal(cp_loss, loss)
    assert set(cp_grads) == set(grads)
    assert any(k.startswith('backbone.stages.3.') for k in grads)
    for name, grad in grads.items():
        assert torch.allclose(cp_grads[name], grad, rtol=1e-5, atol=1e-7), name
    # running statistics updated once, as without checkpointing
    for key, value in state.items():
        assert torch.equal(cp_state[key], value), key


def _hooks(model):
    return {
        name: (dict(m._forward_hooks), dict(m._forward_pre_hooks))
        for name, m in model.named_modules()
    }


def _patched(model):
    return [
        name for name, m in model.named_modules() if 'forward' in m.__dict__
    ]


@pytest.mark.parametrize('with_cp', [False, True])
def test_nothing_is_patched_around_a_forward(with_cp):
    model = _spike_mae(with_cp=with_cp)
    assert _patched(model) == []
    seen = []
    # a probe deep in the encoder, run in the forward (and, with with_cp,
    # again when backward recomputes the block; a pre-hook, as recomputation
    # stops once it has what backward needs)
    probe = model.backbone.stages[3][-1]
    probe.register_forward_pre_hook(lambda *args: seen.append(
        (_patched(model), _hooks(model))))
    hooks = _hooks(model)
    model.train()
    model.loss(torch.randn(2, 3, 64, 64), None)['loss'].backward()
    assert len(seen) == (2 if with_cp else 1)
    for patched, during in seen:
        assert patched == []
        assert during == hooks
    assert _patched(model) == [] and _hooks(model) == hooks


@pytest.mark.parametrize('mode', ['train', 'eval'])
def test_without_a_mask_the_backbone_is_plain(mode):
    model = _spike_mae()
    plain = ESpikeFormer(ARCH)
    getattr(model, mode)()
    getattr(plain, mode)()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        _, visible = model.reconstruct(images)
        # the mask is held after the forward (backward may recompute)
        assert model.sparse_masking.visible is visible
        plain.load_state_dict(model.backbone.state_dict())
        feats = model.extract_feat(images)
        assert model.sparse_masking.visible is None
        expected = plain(images)
    assert len(feats) == len(expected)
    for feat, ref in zip(feats, expected):
        assert torch.equal(feat, ref)
    for key, value in plain.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value), key


def test_a_backbone_changed_after_build_is_refused():
    model = _spike_mae()
    fc1 = model.backbone.stages[3][0].mlp.fc1
    fc1.bn = torch.nn.BatchNorm1d(fc1.bn.num_features)
    with pytest.raises(RuntimeError, match='does not read this mask'):
        model.encode(torch.randn(1, 3, 64, 64), torch.ones(1, 4, 4))
    with pytest.raises(ValueError, match='already converted'):
        model.sparse_masking.convert(model.backbone)


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
