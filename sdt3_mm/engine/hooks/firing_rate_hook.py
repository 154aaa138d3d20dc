"""Firing rates and energy next to the task metric, in val and test."""
import json
import os
import os.path as osp
import sys
from contextlib import ExitStack

import torch
from mmengine.dist import master_only
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import nn

from sdt3_mm.analysis.energy import ENERGY_PRESETS, SpikeCounter
from sdt3_mm.registry import HOOKS


class _CloseOnError:
    """Close ``scope`` when an exception leaves a call of ``module``.

    A forward pre-hook notes the exception being handled when the call
    starts (usually none); a forward hook with ``always_call=True`` runs
    when the call ends, normally or by an exception, and closes the scope
    if another exception is on its way out. Closing the scope removes this
    guard's hooks too, except in one case: while PyTorch runs a module's
    hooks after an error it allows removing only the last one, so a guard
    that is not last is left inert in ``leftovers`` for its owner to
    remove later.
    """

    def __init__(self, module, scope, leftovers):
        self.module = module
        self.scope = scope
        self.leftovers = leftovers
        self._failing = False
        self._entered = []
        self._pre = module.register_forward_pre_hook(self._before)
        self._post = module.register_forward_hook(
            self._after, always_call=True)
        scope.callback(self.remove)

    def _before(self, module, args):
        self._entered.append(sys.exc_info()[1])

    def _after(self, module, args, output):
        handled_before = self._entered.pop() if self._entered else None
        current = sys.exc_info()[1]
        if current is not None and current is not handled_before:
            self._failing = True
            self.scope.close()

    def remove(self):
        self._pre.remove()
        hooks = self.module._forward_hooks
        if self._failing and self._post.id in hooks and next(
                reversed(hooks)) != self._post.id:
            self.leftovers.append(self._post)
        else:
            self._post.remove()


@HOOKS.register_module()
class FiringRateHook(Hook):
    """Count spikes during validation and testing, and report them.

    While the val or test loop runs, every spiking neuron's output and
    every weight layer's input are counted (see :class:`SpikeCounter`;
    any :class:`~sdt3_mm.models.neurons.spiking_neuron.SpikingNeuron`, so
    E-SpikeFormer's SFA and Meta-SpikeFormer's LIF neurons alike). After
    the loop, the network's mean firing rate (spikes sent over spikes
    possible, all neurons) and the estimated energy per image are added to
    the loop's metrics as ``spike/firing_rate`` and ``spike/energy_mJ``, so
    they are logged with the task metric, and the per-layer and per-neuron
    tables are written to ``<work_dir>/firing_rates/{val_iter_<N>,test}
    .json``.

    Energy follows the papers' convention (BN folded, T x D steps, T and D
    taken from the neurons): ``E_MAC * FLOPs(layers on real values) + E_AC
    * sum FLOPs * rate * T * D``; for clips (samples of ``T x C x H x W``
    frames, batched as ``B x T x C x H x W``) T counts the frames too, as
    :meth:`SpikeCounter.add_images` explains. Use it as ``custom_hooks =
    [dict(type='sdt3_mm.FiringRateHook')]``.

    The counting hooks are on the model only while an iteration runs:
    they are put on in ``before_*_iter`` and taken off in
    ``after_*_iter``, and if the data preprocessor or the model's forward
    raises, they are taken off as the exception leaves it. A loop that
    fails (in a forward, in the data loader or in the evaluator) leaves no
    hook behind.

    Args:
        energy (str): Energy preset, ``'fp32'`` (4.6 / 0.9 pJ per MAC /
            AC, the papers' numbers), ``'fp16'`` or ``'int8'``. Defaults to
            ``'fp32'``.
    """

    priority = 'NORMAL'  # before the LoggerHook prints the metrics

    def __init__(self, energy='fp32'):
        if energy not in ENERGY_PRESETS:
            raise ValueError(f'FiringRateHook: energy must be one of '
                             f'{sorted(ENERGY_PRESETS)}, got {energy!r}')
        self.energy = energy
        self._counter = None
        self._scope = ExitStack()
        self._leftovers = []

    @staticmethod
    def _model(runner):
        return runner.model.module if is_model_wrapper(
            runner.model) else runner.model

    def _release(self):
        """Take every hook of this hook's off the model."""
        self._scope.close()
        while self._leftovers:
            self._leftovers.pop().remove()

    def _start(self, runner):
        self._release()
        self._counter = SpikeCounter(self._model(runner))

    def _open(self, runner):
        """Put the counting hooks and their guards on for one iteration."""
        self._release()
        if self._counter is None:
            return
        model = self._model(runner)
        scope = ExitStack()
        try:
            scope.enter_context(self._counter)
            for module in (model, getattr(model, 'data_preprocessor', None)):
                if isinstance(module, nn.Module):
                    _CloseOnError(module, scope, self._leftovers)
        except BaseException:
            scope.close()
            raise
        self._scope = scope

    @staticmethod
    def _frames(data_batch):
        """Frames per sample: ``T`` for clips (``T x C x H x W`` samples,
        batched as ``B x T x C x H x W``), 1 for images."""
        inputs = data_batch.get('inputs') if isinstance(data_batch,
                                                        dict) else None
        if isinstance(inputs, torch.Tensor):
            return inputs.shape[1] if inputs.dim() == 5 else 1
        if isinstance(inputs, (list, tuple)) and inputs and isinstance(
                inputs[0], torch.Tensor) and inputs[0].dim() == 4:
            return inputs[0].shape[0]
        return 1

    def _count(self, outputs, data_batch=None):
        self._release()
        if self._counter is not None:
            self._counter.add_images(
                len(outputs), frames=self._frames(data_batch))

    def _finish(self, runner, mode, metrics):
        self._release()
        counter, self._counter = self._counter, None
        if counter is None:
            return
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

    def before_val_iter(self, runner, batch_idx, data_batch=None):
        self._open(runner)

    def before_test_iter(self, runner, batch_idx, data_batch=None):
        self._open(runner)

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self._count(outputs, data_batch)

    def after_test_iter(self,
                        runner,
                        batch_idx,
                        data_batch=None,
                        outputs=None):
        self._count(outputs, data_batch)

    def after_val_epoch(self, runner, metrics=None):
        self._finish(runner, 'val', metrics)

    def after_test_epoch(self, runner, metrics=None):
        self._finish(runner, 'test', metrics)

    def after_run(self, runner):
        self._release()
        self._counter = None
