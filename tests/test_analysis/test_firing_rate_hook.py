"""FiringRateHook inside MMEngine's Runner test loop, on the demo config."""
import glob
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from sdt3_mm.engine import FiringRateHook
from sdt3_mm.models import SFANeuron

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs/demo/e-spikeformer-t_shapes-cls.py')


def _runner(tmp_path):
    cfg = Config.fromfile(CONFIG)
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        loader.dataset.update(
            data_root=str(tmp_path / 'shapes'), num_train=16, num_val=12)
        loader.update(num_workers=0, persistent_workers=False, batch_size=5)
    cfg.work_dir = str(tmp_path / 'work')
    return Runner.from_cfg(cfg)


def test_hook_reports_counted_rate_and_energy_in_test_loop(tmp_path):
    runner = _runner(tmp_path)
    counted = [0., 0.]

    def count(neuron, inputs, output):
        counted[0] += torch.round(output * neuron.norm).sum().item()
        counted[1] += output.numel() * neuron.D

    for module in runner.model.modules():
        if isinstance(module, SFANeuron):
            module.register_forward_hook(count)
    metrics = runner.test()

    assert 'accuracy/top1' in metrics
    assert metrics['spike/firing_rate'] == pytest.approx(counted[0] /
                                                         counted[1])
    assert 0 < metrics['spike/firing_rate'] < 1
    with open(osp.join(runner.work_dir, 'firing_rates', 'test.json')) as f:
        dumped = json.load(f)
    assert dumped['num_images'] == 12
    assert dumped['energy_mj'] == pytest.approx(metrics['spike/energy_mJ'])
    assert dumped['energy_mj'] == pytest.approx(
        sum(r['energy_pj'] for r in dumped['layers']) * 1e-9)
    assert dumped['layers'][0] == dict(
        dumped['layers'][0],
        layer='backbone.downsample_layers.0.conv',
        op='MAC')
    assert len(dumped['neurons']) == sum(
        isinstance(m, SFANeuron) for m in runner.model.modules())
    log, = glob.glob(osp.join(runner.work_dir, '*', '*.log'))
    with open(log) as f:
        line, = [ln for ln in f if 'Epoch(test)' in ln and 'top1' in ln]
    assert 'spike/firing_rate' in line and 'spike/energy_mJ' in line


def test_hook_leaves_no_hooks_behind_and_refuses_unknown_energy(tmp_path):
    runner = _runner(tmp_path)
    runner.test()
    assert not any(m._forward_hooks for m in runner.model.modules())
    with pytest.raises(ValueError, match='energy must be one of'):
        FiringRateHook(energy='fp64')
