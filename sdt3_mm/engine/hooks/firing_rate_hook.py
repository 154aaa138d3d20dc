"""Firing rates and energy next to the task metric, in val and test."""
import json
import os
import os.path as osp

from mmengine.dist import master_only
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from sdt3_mm.analysis.energy import ENERGY_PRESETS, SpikeCounter
from sdt3_mm.registry import HOOKS


@HOOKS.register_module()
class FiringRateHook(Hook):
    """Count spikes during validation and testing, and report them.

    While the val or test loop runs, every SFA neuron's integer output and
    every weight layer's input are counted (see :class:`SpikeCounter`).
    After the loop, the network's mean firing rate (spikes sent over
    spikes possible, all neurons) and the estimated energy per image are
    added to the loop's metrics as ``spike/firing_rate`` and
    ``spike/energy_mJ``, so they are logged with the task metric, and the
    per-layer and per-neuron tables are written to
    ``<work_dir>/firing_rates/{val_iter_<N>,test}.json``.

    Energy follows the papers' convention (BN folded, T x D steps):
    ``E_MAC * FLOPs(layers on real values) + E_AC * sum FLOPs * rate * T *
    D``. Use it as ``custom_hooks = [dict(type='sdt3_mm.FiringRateHook')]``.

    Args:
        energy (str): Energy preset, ``'fp32'`` (4.6 / 0.9 pJ per MAC /
            AC, the papers' numbers), ``'fp16'`` or ``'int8'``. Defaults to
            ``'fp32'``.
        time_steps (int): Real time steps T. Defaults to 1.
    """

    priority = 'NORMAL'  # before the LoggerHook prints the metrics

    def __init__(self, energy='fp32', time_steps=1):
        if energy not in ENERGY_PRESETS:
            raise ValueError(f'FiringRateHook: energy must be one of '
                             f'{sorted(ENERGY_PRESETS)}, got {energy!r}')
        self.energy = energy
        self.time_steps = time_steps
        self._counter = None

    def _start(self, runner):
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        self._counter = SpikeCounter(model, self.time_steps).__enter__()

    def _count(self, outputs):
        self._counter.add_images(len(outputs))

    def _finish(self, runner, mode, metrics):
        counter, self._counter = self._counter, None
        counter.__exit__(None, None, None)
        counter.all_reduce()
        if not counter.num_images:
            return
        summary = counter.summary(**ENERGY_PRESETS[self.energy])
        figures = {
            'spike/firing_rate': summary['mean_firing_rate'],
            'spike/energy_mJ': summary['energy_mj'],
        }
        for key, value in figures.items():
            runner.message_hub.update_scalar(f'{mode}/{key}', value)
        if metrics is not None:
            metrics.update(figures)
        if mode == 'test':
            name = 'test'
        else:
            # runner.iter would build a train loop that a bare val lacks
            built = not isinstance(runner._train_loop, (dict, type(None)))
            name = f'val_iter_{runner.iter if built else 0}'
        self._dump(runner, name, summary)

    @master_only
    def _dump(self, runner, name, summary):
        out_dir = osp.join(runner.work_dir, 'firing_rates')
        os.makedirs(out_dir, exist_ok=True)
        summary = dict(summary, energy=self.energy)
        with open(osp.join(out_dir, f'{name}.json'), 'w') as f:
            json.dump(summary, f, indent=2)

    def before_val_epoch(self, runner):
        self._start(runner)

    def before_test_epoch(self, runner):
        self._start(runner)

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self._count(outputs)

    def after_test_iter(self,
                        runner,
                        batch_idx,
                        data_batch=None,
                        outputs=None):
        self._count(outputs)

    def after_val_epoch(self, runner, metrics=None):
        self._finish(runner, 'val', metrics)

    def after_test_epoch(self, runner, metrics=None):
        self._finish(runner, 'test', metrics)
