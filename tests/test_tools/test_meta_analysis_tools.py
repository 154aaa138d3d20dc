"""The analysis tools on the Meta-SpikeFormer demo config (LIF neurons over
T = 4 steps), randomly initialised: no checkpoint is needed to run them."""
import json
import os.path as osp

import pytest
import torch
from tool_runner import ROOT, run_tool

CONFIG = osp.join(ROOT, 'configs/demo/meta-spikeformer_t4_shapes-cls.py')


def _firing_checkpoint(path):
    """The demo model with random BN statistics and affine parameters, so
    that its LIF neurons fire (at PyTorch's initialisation whole stages are
    silent, and which layers read spikes cannot be told from silence)."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from sdt3_mm.deployment import build_model
    torch.manual_seed(0)
    # build_model makes the config's scope current: not beyond this test
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = build_model(Config.fromfile(CONFIG))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.running_mean.copy_(torch.rand(n) - 0.5)
                module.running_var.copy_(torch.rand(n) + 0.5)
                module.weight.copy_(torch.rand(n) + 0.5)
                module.bias.copy_(torch.rand(n) * 2)
    torch.save({'state_dict': model.state_dict()}, path)
    return str(path)


def _small_test_set(data_root):
    return [
        f'test_dataloader.dataset.data_root={data_root}',
        'test_dataloader.dataset.num_train=8',
        'test_dataloader.dataset.num_val=4', 'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False'
    ]


def test_spike_energy_prints_the_meta_table(tmp_path):
    out = run_tool([
        osp.join(ROOT, 'tools/analysis_tools/spike_energy.py'), CONFIG,
        '--num-images', '2', '--batch-size', '2', '--out-dir',
        str(tmp_path), '--cfg-options'
    ] + _small_test_set(tmp_path / 'shapes'))
    assert 'T x D = 4 x 1' in out and 'energy per image' in out
    lines = out.splitlines()
    header = [ln for ln in lines if ln.startswith('layer ')]
    assert header and header[0].split()[1:3] == ['T', 'D']
    with open(tmp_path / 'spike_energy.json') as f:
        summary = json.load(f)
    assert summary['num_images'] == 2
    assert summary['T'] == [4] and summary['D'] == [1]
    layers = {row['layer']: row for row in summary['layers']}
    assert layers['backbone.downsample_layers.0.conv']['op'] == 'MAC'
    # the folded RepConvs and the attention products read spikes
    for name in ('backbone.stages.3.0.attn.q.conv',
                 'backbone.stages.3.0.attn.product.kv',
                 'backbone.stages.3.0.attn.product.q', 'head.fc'):
        assert (layers[name]['op'], layers[name]['T'],
                layers[name]['D']) == ('AC', 4, 1)
        assert f'{name} ' in out
    assert summary['energy_mj'] == pytest.approx(
        sum(r['energy_pj'] for r in summary['layers']) * 1e-9)
    assert len(summary['neurons']) > 0


def test_verify_spike_driven_passes_on_the_folded_meta_model(tmp_path):
    out = run_tool([
        osp.join(ROOT, 'tools/analysis_tools/verify_spike_driven.py'), CONFIG,
        _firing_checkpoint(tmp_path / 'firing.pth'), '--fold-bn',
        '--num-images', '1', '--json',
        str(tmp_path / 'verify.json'), '--cfg-options'
    ] + _small_test_set(tmp_path / 'shapes'))
    assert out.count('PASS') == 3 and 'FAIL' not in out
    with open(tmp_path / 'verify.json') as f:
        result = json.load(f)
    assert result['binary_maps'] > 0
    # the stem on pixels and the SepConvs' second pointwise conv on the
    # depthwise conv's output (no neuron between them in V2)
    assert sorted(result['non_additions']['reads real values (MAC)']
                  ) == ['backbone.downsample_layers.0.conv'] + [
                      f'backbone.stages.{s}.sepconv.pwconv2.conv'
                      for s in ('0.0', '1.0', '2.0', '2.1')
                  ]
