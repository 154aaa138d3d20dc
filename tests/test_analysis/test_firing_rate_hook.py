"""FiringRateHook inside MMEngine's Runner loops, on the demo configs."""
import glob
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from sdt3_mm.engine import FiringRateHook
from sdt3_mm.models.neurons.spiking_neuron import SpikingNeuron

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs/demo/e-spikeformer-t_shapes-cls.py')
META_CONFIG = osp.join(ROOT, 'configs/demo/meta-spikeformer_t4_shapes-cls.py')


def _runner(tmp_path, config=CONFIG, num_val=12, batch_size=5):
    cfg = Config.fromfile(config)
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        loader.dataset.update(
            data_root=str(tmp_path / 'shapes'), num_train=16, num_val=num_val)
        loader.update(
            num_workers=0, persistent_workers=False, batch_size=batch_size)
    cfg.work_dir = str(tmp_path / 'work')
    if not any(h.type.endswith('FiringRateHook') for h in cfg.custom_hooks):
        cfg.custom_hooks.append(dict(type='sdt3_mm.FiringRateHook'))
    return Runner.from_cfg(cfg)


def _count_spikes(model):
    """Spikes sent and possible, counted here from every neuron's output."""
    counted = [0., 0.]

    def count(neuron, inputs, output):
        counted[0] += torch.round(output * neuron.norm).sum().item()
        counted[1] += output.numel() * neuron.max_level

    handles = [
        m.register_forward_hook(count) for m in model.modules()
        if isinstance(m, SpikingNeuron)
    ]
    return counted, handles


def _hooks_left(model):
    return [
        name for name, m in model.named_modules()
        if m._forward_hooks or m._forward_pre_hooks
    ]


def test_hook_reports_counted_rate_and_energy_in_test_loop(tmp_path):
    runner = _runner(tmp_path)
    counted, _ = _count_spikes(runner.model)
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
        isinstance(m, SpikingNeuron) for m in runner.model.modules())
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


def test_hook_counts_meta_spikeformer(tmp_path):
    """Meta-SpikeFormer's LIF neurons (T = 4, binary spikes) through the
    same hook: rates, T and D from the neurons."""
    runner = _runner(tmp_path, META_CONFIG, num_val=4, batch_size=2)
    counted, handles = _count_spikes(runner.model)
    metrics = runner.test()
    for handle in handles:
        handle.remove()
    assert 'accuracy/top1' in metrics
    assert metrics['spike/firing_rate'] == pytest.approx(counted[0] /
                                                         counted[1])
    assert 0 < metrics['spike/firing_rate'] < 1
    with open(osp.join(runner.work_dir, 'firing_rates', 'test.json')) as f:
        dumped = json.load(f)
    assert dumped['num_images'] == 4
    assert dumped['T'] == [4] and dumped['D'] == [1]
    assert len(dumped['neurons']) == sum(
        isinstance(m, SpikingNeuron) for m in runner.model.modules())
    products = [r for r in dumped['layers'] if '.product.' in r['layer']]
    assert products and all(r['op'] == 'AC' for r in products)
    assert dumped['energy_mj'] == pytest.approx(metrics['spike/energy_mJ'])
    assert not _hooks_left(runner.model)


def _raise_in_second_call(module):
    calls = []

    def boom(module, args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError('boom')

    return module.register_forward_pre_hook(boom)


def _raise_in_forward(runner):
    return _raise_in_second_call(runner.model.head)


def _raise_in_preprocessor(runner):
    return _raise_in_second_call(runner.model.data_preprocessor)


def _raise_in_evaluator(runner):

    def boom(*args, **kwargs):
        raise RuntimeError('boom')

    runner.val_loop.evaluator.evaluate = boom


@pytest.mark.parametrize(
    'make_it_raise',
    [_raise_in_forward, _raise_in_preprocessor, _raise_in_evaluator])
def test_no_hook_is_left_after_a_val_loop_that_raises(tmp_path, make_it_raise):
    runner = _runner(tmp_path, num_val=6, batch_size=2)
    handle = make_it_raise(runner)
    with pytest.raises(RuntimeError, match='boom'):
        runner.val()
    if handle is not None:
        handle.remove()
    assert not _hooks_left(runner.model)
    # and the next loop counts afresh
    counted, handles = _count_spikes(runner.model)
    runner.val_loop.evaluator = runner.build_evaluator(
        runner.cfg.val_evaluator)
    runner.val_loop.evaluator.dataset_meta = \
        runner.val_loop.dataloader.dataset.metainfo
    metrics = runner.val()
    assert metrics['spike/firing_rate'] == pytest.approx(counted[0] /
                                                         counted[1])
    for handle in handles:
        handle.remove()
    assert not _hooks_left(runner.model)
