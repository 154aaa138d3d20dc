"""BN folding: equal outputs in float64, no BN left, original untouched."""
import pytest
import torch
from spiking_models import (LARGE, firing_backbone, firing_meta_backbone,
                            randomise_norms)
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from sdt3_mm.analysis import SpikeDriven, fold_bn, fold_into
from sdt3_mm.models import SpikeFPN, SpikeShared2FCBBoxHead
from sdt3_mm.models.backbones.meta_spikeformer import RepConv
from sdt3_mm.models.layers.spike_code_ops import SpikeConv2d
from sdt3_mm.models.backbones.e_spikeformer import StackedConvBN1d


def _norms(model):
    return sum(isinstance(m, _BatchNorm) for m in model.modules())


@pytest.mark.parametrize('arch', ['t', LARGE])
def test_folded_backbone_is_equal_in_float64(arch):
    model = firing_backbone(arch).double()
    _assert_backbone_folds(model)


def _layer_scales(model):
    return [n for n, _ in model.named_parameters() if 'layer_scale' in n]


def _assert_backbone_folds(model):
    x = torch.randn(2, 3, 36, 52, dtype=torch.float64)
    folded = fold_bn(model)
    with torch.no_grad():
        for a, b in zip(model(x), folded(x)):
            assert (a - b).abs().max().item() <= 1e-9
    assert _norms(folded) == 0
    assert not any(isinstance(m, StackedConvBN1d) for m in folded.modules())
    assert _norms(model) > 0  # the original keeps its norms
    assert not _layer_scales(folded)
    return folded


@pytest.mark.parametrize('arch, scales', [('t', 24), (LARGE, 4)])
def test_layer_scales_fold_into_the_norms_closing_their_branches(
        arch, scales):
    """The layer-scaled base model (as the ADE20K and HARDVS configs build
    it: three scales per transformer block) and the large family (two):
    equal outputs after folding, no scale left, and none reported as a
    multiplication any more."""
    model = firing_backbone(arch, layer_scale_init_value=1e-6)
    model = model.double()
    assert len(_layer_scales(model)) == scales
    x = torch.randn(1, 3, 32, 48, dtype=torch.float64)
    with torch.no_grad(), SpikeDriven(model) as report:
        model(x)
    listed = [n for n in report.non_additions if 'layer_scale' in n]
    assert len(listed) == scales
    folded = _assert_backbone_folds(model)
    with torch.no_grad(), SpikeDriven(folded) as report:
        folded(x)
    assert not [n for n in report.non_additions if 'layer_scale' in n]


@pytest.mark.parametrize(
    'layer, bn, shape',
    [
        (nn.Conv2d(6, 6, 7, padding=3, groups=6), nn.BatchNorm2d(6),
         (2, 6, 9, 9)),  # depthwise
        (nn.Conv1d(5, 7, 1, bias=False), nn.BatchNorm1d(7), (2, 5, 11)),
        (nn.Linear(5, 4, bias=False), nn.BatchNorm1d(4), (3, 5)),
    ])
def test_fold_into_each_layer_kind(layer, bn, shape):
    randomise_norms(nn.Sequential(bn))
    layer, bn = layer.double().eval(), bn.double().eval()
    x = torch.randn(*shape, dtype=torch.float64)
    folded = fold_into(layer, bn)
    assert folded.bias is not None
    with torch.no_grad():
        assert torch.allclose(bn(layer(x)), folded(x), rtol=0, atol=1e-12)


def test_stacked_projection_becomes_one_conv():
    stacked = randomise_norms(StackedConvBN1d(8, 12, 6)).double().eval()
    merged = stacked.merge()
    x = torch.randn(2, 8, 10, dtype=torch.float64)
    assert isinstance(merged, nn.Conv1d) and merged.weight.shape == (6, 8, 1)
    with torch.no_grad():
        assert torch.allclose(stacked(x), merged(x), rtol=0, atol=1e-12)


def _assert_folds_exactly(module, *inputs):
    module = module.double().eval()
    folded = fold_bn(module)
    assert _norms(module) > 0 and _norms(folded) == 0
    with torch.no_grad():
        for a, b in zip(module(*inputs), folded(*inputs)):
            assert (a - b).abs().max().item() <= 1e-9


def test_neck_norms_fold():
    neck = randomise_norms(SpikeFPN([16, 32], 16, 3, in_strides=[8, 16]))
    feats = [
        torch.rand(2, 16, 8, 8, dtype=torch.float64) * 2,
        torch.rand(2, 32, 4, 4, dtype=torch.float64) * 2
    ]
    _assert_folds_exactly(neck, feats)


def test_box_head_fc_norms_fold():
    # MMDetection's scope: its bbox coder is looked up in the current one,
    # which a Runner built earlier on the same worker may have left as
    # mmengine's.
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        head = randomise_norms(
            SpikeShared2FCBBoxHead(
                in_channels=16, fc_out_channels=32, roi_feat_size=7,
                num_classes=3))
    _assert_folds_exactly(head,
                          torch.rand(5, 16, 7, 7, dtype=torch.float64) * 2)


def test_norm_without_running_statistics_is_refused():
    bn = nn.BatchNorm2d(4, track_running_stats=False)
    with pytest.raises(ValueError, match='keeps no running statistics'):
        fold_into(nn.Conv2d(3, 4, 1), bn)


def test_mismatched_norm_is_refused():
    with pytest.raises(ValueError, match='does not match the 4 output'):
        fold_into(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(5))


def test_rep_conv_becomes_one_3x3_conv():
    rep = randomise_norms(RepConv(6, 5)).double().eval()
    with torch.no_grad():
        for conv in (rep.conv1, rep.dwconv, rep.conv2):
            conv.weight.normal_()
    merged = rep.merge()
    assert isinstance(merged, SpikeConv2d)
    assert merged.weight.shape == (5, 6, 3, 3) and merged.padding == (1, 1)
    x = torch.randint(0, 2, (2, 6, 7, 9)).double()  # spikes
    with torch.no_grad():
        assert torch.allclose(rep(x), merged(x), rtol=0, atol=1e-12)


def test_folded_meta_spikeformer_is_equal_in_float64():
    """No BN and no RepConv left: each RepConv and the BN after it are one
    3x3 conv reading the spikes."""
    model = firing_meta_backbone(T=2).double()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    folded = fold_bn(model)
    with torch.no_grad():
        for a, b in zip(model(x), folded(x)):
            assert (a - b).abs().max().item() <= 1e-9
    assert _norms(folded) == 0
    assert not any(isinstance(m, RepConv) for m in folded.modules())
    assert any(isinstance(m, RepConv) for m in model.modules())
