"""Base-family layer scales (``layer_scale_init_value``), as the
reference's segmentation and event backbones have them: three per-channel
scales per transformer block, the ImageNet checkpoints' numbers unchanged
without them, and an ImageNet checkpoint loading into a layer-scaled
backbone with exactly the layer scales left at their initial value."""
import logging
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger

from sdt3_mm.models import ESpikeFormer, MetaSpikeFormer

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SEM_FPN_L = osp.join(
    ROOT, 'configs/sem_fpn/fpn_e-spikeformer-l_spike-fpn_4xb4-160k_'
    'ade20k-512x512.py')


def _layer_scales(model):
    return {k: v for k, v in model.state_dict().items() if 'layer_scale' in k}


def test_off_by_default_in_the_base_family():
    assert _layer_scales(ESpikeFormer(arch='t')) == {}
    # the large family keeps its two per block, 1e-6
    scales = _layer_scales(ESpikeFormer(arch='83m'))
    assert len(scales) == 2 * 12
    assert all(torch.all(v == 1e-6) for v in scales.values())


def test_three_scales_per_transformer_block_with_the_reference_count():
    model = ESpikeFormer(arch='l', layer_scale_init_value=1e-6)
    scales = _layer_scales(model)
    # stages 3 and 4: 6 + 2 blocks, each SepConv, attention, MLP
    assert len(scales) == 3 * (6 + 2)
    assert sorted({k.split('.')[-1]
                   for k in scales
                   }) == ['layer_scale1', 'layer_scale2', 'layer_scale3']
    assert scales['stages.3.0.layer_scale3'].shape == (256, )
    assert scales['stages.4.1.layer_scale1'].shape == (360, )
    assert all(torch.all(v == 1e-6) for v in scales.values())
    # the reference's HARDVS backbone (2 input channels): 18,631,704
    hardvs = ESpikeFormer(arch='l', in_channels=2, layer_scale_init_value=1e-6)
    assert sum(p.numel() for p in hardvs.parameters()) == 18631704


def test_scales_multiply_each_residual_branch():
    """With scales of 1 the block computes what it does without; with
    zeros every transformer block is the identity."""
    torch.manual_seed(0)
    plain = ESpikeFormer(arch='t', out_indices=(3, 4)).eval()
    scaled = ESpikeFormer(
        arch='t', out_indices=(3, 4), layer_scale_init_value=1.).eval()
    scaled.load_state_dict(plain.state_dict(), strict=False)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(plain(x), scaled(x)):
            assert torch.equal(a, b)
        for name, param in scaled.named_parameters():
            if 'layer_scale' in name:
                param.zero_()
        block = scaled.stages[3][0]
        tokens = torch.randn(2, 96, 4, 4)
        assert torch.equal(block(tokens), tokens)


def test_gradients_reach_the_scales():
    model = ESpikeFormer(
        arch='t', out_indices=(4, ), layer_scale_init_value=1e-6)
    model(torch.randn(2, 3, 32, 32))[0].sum().backward()
    grads = [
        p.grad for name, p in model.named_parameters() if 'layer_scale' in name
    ]
    assert len(grads) == 24 and all(g is not None for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize('value', [0, -1e-6, True, 'small', float('inf')])
def test_bad_values_are_refused(value):
    with pytest.raises(ValueError, match='layer_scale_init_value must be'):
        ESpikeFormer(arch='t', layer_scale_init_value=value)


def test_meta_spikeformer_has_none():
    with pytest.raises(TypeError, match='layer_scale_init_value'):
        MetaSpikeFormer(arch='15m', layer_scale_init_value=1e-6)


def test_imagenet_checkpoint_loads_with_exactly_the_scales_named(tmp_path):
    torch.manual_seed(0)
    imagenet = ESpikeFormer(arch='t')
    for param in imagenet.parameters():
        torch.nn.init.normal_(param)
    path = str(tmp_path / 't_in1k.pth')
    torch.save({'state_dict': imagenet.state_dict()}, path)
    model = ESpikeFormer(
        arch='t',
        layer_scale_init_value=1e-6,
        init_cfg=dict(type='Pretrained', checkpoint=path))
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()  # where the loader logs
    logger.addHandler(handler)
    try:
        model.init_weights()
    finally:
        logger.removeHandler(handler)
    for key, value in imagenet.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    scales = _layer_scales(model)
    assert all(torch.all(v == 1e-6) for v in scales.values())
    lines = [
        r.getMessage() for r in records if 'layer scales' in r.getMessage()
    ]
    assert len(lines) == 1, [r.getMessage() for r in records]
    assert 'the 24 layer scales of the transformer blocks keep their ' \
        'initial value 1e-06' in lines[0]
    named = lines[0].rsplit(': ', 1)[1].split(', ')
    assert sorted(named) == sorted(scales)


def test_other_missing_keys_still_refused(tmp_path):
    state = ESpikeFormer(arch='t').state_dict()
    del state['stages.3.0.mlp.fc1.bn.weight']
    path = str(tmp_path / 'partial.pth')
    torch.save(state, path)
    model = ESpikeFormer(
        arch='t',
        layer_scale_init_value=1e-6,
        init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(KeyError) as error:
        model.init_weights()
    assert '1 missing keys (stages.3.0.mlp.fc1.bn.weight)' in str(error.value)


def test_layer_scaled_checkpoint_needs_the_option(tmp_path):
    """The other way round (a layer-scaled checkpoint into a backbone
    without scales) is no ImageNet initialisation: refused, named."""
    path = str(tmp_path / 'scaled.pth')
    torch.save(
        ESpikeFormer(arch='t', layer_scale_init_value=1e-6).state_dict(), path)
    model = ESpikeFormer(
        arch='t', init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(KeyError, match='24 unexpected keys'):
        model.init_weights()


def test_ade20k_semantic_fpn_configs_use_them():
    cfg = Config.fromfile(SEM_FPN_L)
    assert cfg.model.backbone.layer_scale_init_value == 1e-6
    m_cfg = Config.fromfile(SEM_FPN_L.replace('-l_', '-m_'))
    assert m_cfg.model.backbone.layer_scale_init_value == 1e-6


def test_ade20k_config_loads_the_converted_imagenet_l_checkpoint(tmp_path):
    """The Semantic-FPN L config's backbone, initialised from an official
    19M checkpoint converted by our tool: everything loads but exactly its
    24 layer scales (8 transformer blocks x 3), named."""
    import re
    import subprocess
    import sys

    from mmengine.registry import MODELS, init_default_scope
    official = {}
    keys = osp.join(ROOT, 'tests/data/official_keys/e_spikeformer_l_19M.txt')
    torch.manual_seed(0)
    with open(keys) as f:
        for line in f:
            if line.startswith('#') or not line.strip():
                continue
            key, shape = line.rstrip('\n').split('\t')
            official[key] = torch.randn(
                [int(d) for d in re.findall(r'\d+', shape)])
    src, dst = str(tmp_path / '19M.pth'), str(tmp_path / 'l_in1k.pth')
    torch.save({'model': official}, src)
    subprocess.run([
        sys.executable,
        osp.join(ROOT, 'tools/model_converters/sdt3_official_to_mm.py'), src,
        dst
    ],
                   check=True,
                   capture_output=True)
    cfg = Config.fromfile(SEM_FPN_L)
    init_default_scope('mmseg')
    backbone_cfg = cfg.model.backbone.copy()
    backbone_cfg.init_cfg.checkpoint = dst
    backbone = MODELS.build(backbone_cfg)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        backbone.init_weights()
    finally:
        logger.removeHandler(handler)
    lines = [
        r.getMessage() for r in records if 'layer scales' in r.getMessage()
    ]
    assert len(lines) == 1
    named = set(lines[0].rsplit(': ', 1)[1].split(', '))
    assert named == set(_layer_scales(backbone)) and len(named) == 24
    # a converted weight arrived
    assert torch.equal(backbone.downsample_layers[0].conv.weight,
                       official['downsample1_1.encode_conv.weight'])
