"""Stop training at the first non-finite loss, gradient norm or weight,
before a checkpoint of it is written."""
import math
import numbers

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.fileio import exists
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict
from mmengine.runner import IterBasedTrainLoop

from sdt3_mm.registry import HOOKS
from sdt3_mm.utils.arguments import is_integer
from .checkpoint_content import (all_finite, describe_non_finite,
                                 floating_tensors)


@HOOKS.register_module()
class NonFiniteCheckHook(Hook):
    """Stop training with an error at the first non-finite value.

    Checked, all in training only (validation and testing are not):

    - after every iteration, each loss entry of the iteration's outputs
      (``loss`` and its parts: the keys containing ``'loss'``);
    - after every iteration, the gradient norm the optimizer wrapper
      logged (``train/grad_norm``, present when ``clip_grad`` is set),
      except under fp16 loss scaling (a wrapper with an enabled
      ``GradScaler`` and no bf16 autocast): there a non-finite gradient is
      routine, the scaler skips that step and lowers the scale;
    - before the first iteration, every ``interval`` iterations, and at
      the last iteration of every epoch and of training: every parameter
      and floating-point buffer of the model (BN running statistics
      included), unwrapped from DDP. Non-finite gradients without
      ``clip_grad`` show up here, after the optimizer step. The tensors
      are checked in one pass with one device synchronisation, shared
      with the loss check;
    - before any checkpoint is written (``before_save_checkpoint``):
      every floating-point tensor of the checkpoint (weights, optimizer
      state, ...) except the message hub's log history.

    The iteration checks run before mmengine's ``CheckpointHook``
    (priority ``VERY_LOW``) saves that iteration or epoch, so a
    non-finite state is never written and the checkpoints already on
    disk are kept. The check in ``before_save_checkpoint`` is only a last
    line of defence for states the iteration checks did not see
    (``interval`` > 1): by then mmengine's ``CheckpointHook`` has already
    removed its oldest checkpoint (when ``max_keep_ckpts`` is reached).

    In distributed training the ranks agree (one all-reduce of a flag per
    iteration) and all of them raise at the same iteration, also when a
    rank's own BN statistics alone went non-finite. The checkpoint check
    is per rank and has no collective.

    Use it as ``custom_hooks = [dict(type='sdt3_mm.NonFiniteCheckHook')]``.

    Args:
        interval (int): Check parameters and buffers every ``interval``
            training iterations, besides the first, the last of each epoch
            and the last of training. Losses and the gradient norm are
            checked every iteration regardless. Use an interval that
            divides the checkpoint interval, so every saved state has been
            checked before the save starts. Defaults to 1.

    Raises:
        ValueError: At construction, if ``interval`` is not a positive
            integer.
        FloatingPointError: From a training hook, naming what went
            non-finite (loss entries, ``grad_norm``, or up to ten
            parameter, buffer or checkpoint entries with their NaN and Inf
            counts, and the count of the rest), the iteration and
            epoch, the learning rate in use and the last complete
            checkpoint to resume from (mmengine's ``last_ckpt``) or that
            there is none. The message is also
            logged at error level.
    """

    # Before CheckpointHook (VERY_LOW) saves, ParamSchedulerHook (LOW)
    # changes the learning rate and EMAHook (NORMAL) averages the weights.
    priority = 'ABOVE_NORMAL'

    def __init__(self, interval=1):
        if not is_integer(interval) or interval < 1:
            raise ValueError(
                f'interval must be a positive integer, got {interval!r}')
        self.interval = interval
        # The last checkpoint known to be complete when a check ran; while
        # a checkpoint is being written, `last_ckpt` already names it.
        self._resume_from = None

    def before_train(self, runner):
        self._resume_from = runner.message_hub.get_info('last_ckpt')
        problems = self._check(runner, {}, check_state=True, stepped=False)
        if problems:
            # Then the loaded checkpoint is itself the problem: no advice
            # to resume from it.
            self._fail(
                runner, 'in the model before the first training iteration '
                '(as initialised, loaded or resumed)',
                problems,
                resume_hint=False)

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None):
        self._resume_from = runner.message_hub.get_info('last_ckpt')
        check_state = (
            self.every_n_train_iters(runner, self.interval)
            or self.is_last_train_iter(runner)
            or (_epoch_based(runner)
                and self.end_of_epoch(runner.train_dataloader, batch_idx)))
        problems = self._check(runner, outputs or {}, check_state)
        if problems:
            where = f'at training iteration {runner.iter + 1}'
            if _epoch_based(runner):
                where += (f' (epoch {runner.epoch + 1}, batch '
                          f'{batch_idx + 1}/{len(runner.train_dataloader)})')
            self._fail(runner, where, problems)

    def before_save_checkpoint(self, runner, checkpoint):
        tensors = []
        for key, value in checkpoint.items():
            # The log history may hold non-finite values legitimately
            # (gradient norms of steps skipped under fp16 loss scaling).
            if key != 'message_hub':
                tensors.extend(floating_tensors(value, key))
        with torch.no_grad():
            if all_finite(tensor for _, tensor in tensors).item():
                return
        problem = _describe(tensors, 'entries')
        if problem:
            where = ('in the checkpoint being written after training '
                     f'iteration {checkpoint.get("meta", {}).get("iter")}')
            if _epoch_based(runner):
                where += f' (epoch {runner.epoch + 1})'
            self._fail(runner, where + '; it was not written', [problem])

    def _check(self, runner, outputs, check_state, stepped=True):
        """Return descriptions of the non-finite values, [] if none.

        Checks the loss entries of ``outputs``, the logged gradient norm if
        ``stepped`` (an optimizer step of this run logged it), and the
        model's parameters and buffers if ``check_state``. Synchronises the
        device once (and all-reduces one flag across ranks); only on
        failure checks each tensor again to name it.
        """
        losses = [(key, value) for key, value in outputs.items()
                  if 'loss' in key]
        loss_tensors = [(key, value.detach()) for key, value in losses
                        if isinstance(value, torch.Tensor)]
        problems = [
            f'{key}={value}' for key, value in losses
            if isinstance(value, numbers.Real) and not math.isfinite(value)
        ]
        grad_norm = _logged_grad_norm(runner) if stepped else None
        if grad_norm is not None and not math.isfinite(grad_norm):
            problems.append(f'grad_norm={grad_norm}')
        tensors = list(_model_tensors(runner)) if check_state else []
        with torch.no_grad():
            ok = all_finite(value for _, value in loss_tensors + tensors)
        ok = ok & (not problems)
        if get_world_size() > 1:
            ok = ok.to(torch.int32)
            all_reduce(ok, op='min')
        if ok.item():
            return []

        # The failure path: find what went non-finite, tensor by tensor.
        with torch.no_grad():
            problems = [
                f'{key}={value.float().mean().item()}'
                for key, value in loss_tensors
                if not torch.isfinite(value).all()
            ] + problems
        state_problem = _describe(tensors, 'parameters and buffers')
        if state_problem:
            problems.append(state_problem)
        if not problems:
            problems.append('non-finite values on another rank '
                            '(see the error of that rank)')
        return problems

    def _fail(self, runner, where, problems, resume_hint=True):
        lines = [f'Non-finite values {where}:']
        lines += [f'  - {problem}' for problem in problems]
        lines.append(f'Learning rate in use: {_learning_rates(runner)}.')
        path = self._resume_from
        if not resume_hint:
            lines.append('Training cannot go on from non-finite weights: '
                         'start from an earlier checkpoint.')
        elif path and exists(path):
            lines.append(
                f'Last complete checkpoint: {path}. Resume from it with a '
                'fix (e.g. a lower learning rate or clip_grad): '
                f'`tools/train.py CONFIG --resume {path}`, or resume=True '
                f'and load_from={path!r} in the config.')
        elif path:
            lines.append(f'The last checkpoint written, {path}, no longer '
                         'exists: no checkpoint of this run is left to '
                         'resume from.')
        else:
            lines.append('No checkpoint of this run has been written: '
                         'start it again with a fix (e.g. a lower learning '
                         'rate or clip_grad).')
        message = '\n'.join(lines)
        runner.logger.error(message)
        raise FloatingPointError(message)


def _epoch_based(runner):
    # IterBasedTrainLoop runs one endless "epoch"; other loops count them.
    return not isinstance(runner.train_loop, IterBasedTrainLoop)


def _model_tensors(runner):
    """Yield (name, tensor) for the parameters and floating buffers of the
    runner's model, named as in its checkpoints."""
    model = runner.model
    if is_model_wrapper(model):
        model = model.module
    for name, param in model.named_parameters():
        yield name, param.detach()
    for name, buffer in model.named_buffers():
        if buffer.is_floating_point() or buffer.is_complex():
            yield name, buffer


def _wrappers(runner):
    optim_wrapper = runner.optim_wrapper
    if isinstance(optim_wrapper, OptimWrapperDict):
        return list(optim_wrapper.values())
    return [optim_wrapper]


def _logged_grad_norm(runner):
    """The gradient norm the optimizer wrapper logged for the last step, or
    None when there is none to check.

    None when no wrapper clips by norm (nothing is logged then; a value in
    the message hub would be stale, e.g. resumed), and under fp16 loss
    scaling, where the ``GradScaler`` skips steps with non-finite
    gradients. Not under bf16 autocast: its range is fp32's, and a
    non-finite gradient there is a real one, even with a scaler.
    """
    wrappers = _wrappers(runner)
    clipped = [
        getattr(wrapper, 'grad_name', None) == 'grad_norm'
        for wrapper in wrappers if getattr(wrapper, 'clip_grad_kwargs', None)
    ]
    if not any(clipped) or any(map(_fp16_loss_scaled, wrappers)):
        return None
    history = runner.message_hub.log_scalars.get('train/grad_norm')
    return None if history is None else float(history.current())


def _fp16_loss_scaled(wrapper):
    """Whether ``wrapper`` scales the loss with a ``GradScaler`` under fp16
    autocast (mmengine's ``AmpOptimWrapper`` casts to fp16 when its dtype
    is None)."""
    scaler = getattr(wrapper, 'loss_scaler', None)
    dtype = getattr(wrapper, 'cast_dtype', None)
    return (isinstance(scaler, torch.amp.GradScaler) and scaler.is_enabled()
            and dtype in (None, torch.float16))


def _learning_rates(runner):
    """The learning rates of the optimizer's parameter groups, as text."""
    parts = []
    for key, rates in runner.optim_wrapper.get_lr().items():
        # get_lr() also reports the schedulers' base values.
        if key.endswith('base_lr'):
            continue
        rates = sorted(set(rates))
        text = ', '.join(f'{rate:.4g}' for rate in rates)
        if len(rates) > 1:
            text = f'[{text}]'
        parts.append(f'{key}={text}')
    return '; '.join(parts)


def _describe(tensors, what):
    """``'N of M <what> non-finite: <names with counts>'`` for the
    non-finite ones among ``tensors`` (name, tensor), or None if none."""
    count, description = describe_non_finite(tensors)
    if not count:
        return None
    return f'{count} of {len(tensors)} {what} non-finite: {description}'
