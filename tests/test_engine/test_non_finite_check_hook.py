"""NonFiniteCheckHook stops training at the first non-finite loss, gradient
norm, parameter or buffer, and no non-finite checkpoint is written."""
import glob
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

from sdt3_mm.reliability import NonFiniteCheckHook, safe_torch_load

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN = osp.join(ROOT, 'tools/train.py')
CONFIG = osp.join(ROOT, 'configs/demo/e-spikeformer-t_shapes-cls.py')


class _Toy(BaseModel):
    """A linear layer and a BN; with ``singular`` the loss gains sqrt(root)
    at root = 0: a finite loss with an infinite gradient."""

    def __init__(self, singular=False):
        super().__init__()
        self.linear = nn.Linear(2, 2)
        self.bn = nn.BatchNorm1d(2)
        self.root = nn.Parameter(torch.zeros(1))
        self.singular = singular

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.bn(self.linear(inputs))
        if mode != 'loss':
            return out
        loss = F.mse_loss(out, data_samples)
        if self.singular:
            loss = loss + self.root.sqrt().sum()
        return dict(loss_mse=loss)


class _Data(Dataset):
    """``size`` samples; sample ``poison`` has an infinite input."""

    def __init__(self, size=16, poison=None):
        self.size = size
        self.poison = poison

    def __len__(self):
        return self.size

    def __getitem__(self, index):
        inputs = torch.tensor([index % 3, index % 2], dtype=torch.float32)
        if index == self.poison:
            inputs[0] = float('inf')
        return dict(inputs=inputs, data_samples=torch.ones(2))


class _Corrupt(Hook):
    """Apply ``fn`` to the model after training iteration ``at`` (1-based),
    before the hook under test looks at it."""
    priority = 'HIGH'

    def __init__(self, at, fn):
        self.at = at
        self.fn = fn

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.at:
            with torch.no_grad():
                self.fn(runner.model)


class _LossScaledOptimWrapper(OptimWrapper):
    """mmengine's AmpOptimWrapper step (fp16 loss scaling) on CPU, where
    AmpOptimWrapper refuses to start: a GradScaler skips each step whose
    gradients are non-finite."""

    def __init__(self, cast_dtype=torch.float16, **kwargs):
        super().__init__(**kwargs)
        self.cast_dtype = cast_dtype
        self.loss_scaler = torch.amp.GradScaler('cpu')

    def backward(self, loss, **kwargs):
        self.loss_scaler.scale(loss).backward(**kwargs)
        self._inner_count += 1

    def step(self, **kwargs):
        if self.clip_grad_kwargs:
            self.loss_scaler.unscale_(self.optimizer)
            self._clip_grad()
        self.loss_scaler.step(self.optimizer, **kwargs)
        self.loss_scaler.update()


def _runner(work_dir,
            model=None,
            hooks=(),
            data=None,
            optim_wrapper=None,
            train_cfg=None,
            interval=1,
            checkpoint_interval=1,
            **kwargs):
    return Runner(
        model=model or _Toy(),
        work_dir=str(work_dir),
        experiment_name=f'non_finite_{osp.basename(work_dir)}',
        train_dataloader=dict(
            dataset=data or _Data(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=4,
            num_workers=0,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=optim_wrapper
        or dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=train_cfg or dict(by_epoch=True, max_epochs=2),
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook',
                by_epoch=False,
                interval=checkpoint_interval,
                max_keep_ckpts=-1)),
        custom_hooks=[NonFiniteCheckHook(interval=interval), *hooks],
        default_scope='mmengine',
        **kwargs)


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _tensors(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)


def _checkpoints(work_dir):
    """Names of the checkpoints in ``work_dir``, each asserted finite in its
    weights and optimizer state."""
    paths = sorted(glob.glob(osp.join(work_dir, '*.pth')))
    for path in paths:
        checkpoint = safe_torch_load(path)
        for key in ('state_dict', 'optimizer'):
            for tensor in _tensors(checkpoint[key]):
                if tensor.is_floating_point():
                    assert torch.isfinite(tensor).all(), (path, key)
    return [osp.basename(path) for path in paths]


def _fill_inf(name):

    def fill(model):
        tensors = dict(model.named_parameters())
        tensors.update(model.named_buffers())
        tensors[name].fill_(float('inf'))

    return fill


def test_bn_buffer_stops_before_its_checkpoint(tmp_path):
    runner = _runner(
        tmp_path, hooks=[_Corrupt(3, _fill_inf('bn.running_var'))])
    with pytest.raises(FloatingPointError) as error:
        runner.train()
    message = str(error.value)
    assert 'at training iteration 3 (epoch 1, batch 3/4)' in message
    assert '1 of 7 parameters and buffers non-finite: bn.running_var' \
        in message
    assert 'Learning rate in use: lr=0.01.' in message
    assert f'Last complete checkpoint: {tmp_path / "iter_2.pth"}.' in message
    assert _checkpoints(tmp_path) == ['iter_1.pth', 'iter_2.pth']


def test_finite_training_runs_through(tmp_path):
    runner = _runner(tmp_path, train_cfg=dict(by_epoch=True, max_epochs=1))
    runner.train()
    assert _checkpoints(tmp_path) == [f'iter_{i}.pth' for i in range(1, 5)]


def test_nan_loss_in_an_iteration_based_loop(tmp_path):
    # Sample 9 is in the third batch of four.
    runner = _runner(
        tmp_path,
        data=_Data(poison=9),
        train_cfg=dict(by_epoch=False, max_iters=8),
        checkpoint_interval=8)
    with pytest.raises(FloatingPointError) as error:
        runner.train()
    message = str(error.value)
    assert 'at training iteration 3:' in message
    assert 'epoch' not in message
    assert '  - loss=nan\n  - loss_mse=nan\n' in message
    assert 'No checkpoint of this run has been written' in message
    assert _checkpoints(tmp_path) == []


@pytest.mark.parametrize('wrapper',
                         ['OptimWrapper', 'sdt3_mm.BF16OptimWrapper'])
def test_infinite_grad_norm_stops_fp32_and_bf16(tmp_path, wrapper):
    runner = _runner(
        tmp_path,
        model=_Toy(singular=True),
        optim_wrapper=dict(
            type=wrapper,
            optimizer=dict(type='SGD', lr=0.01),
            clip_grad=dict(max_norm=1.0)))
    with pytest.raises(FloatingPointError) as error:
        runner.train()
    assert 'at training iteration 1 ' in str(error.value)
    assert '  - grad_norm=inf\n' in str(error.value)
    assert _checkpoints(tmp_path) == []


def test_infinite_gradient_without_clip_grad_shows_in_the_weights(tmp_path):
    runner = _runner(tmp_path, model=_Toy(singular=True))
    with pytest.raises(FloatingPointError) as error:
        runner.train()
    message = str(error.value)
    assert 'grad_norm' not in message
    assert '1 of 7 parameters and buffers non-finite: root' in message


def test_fp16_loss_scaling_skips_infinite_gradients(tmp_path):
    # Built by the runner, so that it logs into the runner's message hub.
    runner = _runner(
        tmp_path,
        model=_Toy(singular=True),
        optim_wrapper=dict(
            type=_LossScaledOptimWrapper,
            optimizer=dict(type='SGD', lr=0.01),
            clip_grad=dict(max_norm=1.0)),
        train_cfg=dict(by_epoch=True, max_epochs=1))
    runner.train()
    assert runner.message_hub.get_scalar('train/grad_norm').current() \
        == float('inf')
    # Four skipped steps.
    assert runner.optim_wrapper.loss_scaler.get_scale() == 2.**12
    assert _checkpoints(tmp_path) == [f'iter_{i}.pth' for i in range(1, 5)]


def test_bf16_with_a_loss_scaler_still_stops(tmp_path):
    # As mmengine's AmpOptimWrapper(dtype='bfloat16'): bf16 has fp32's
    # range, so an infinite gradient is a real one.
    runner = _runner(
        tmp_path,
        model=_Toy(singular=True),
        optim_wrapper=dict(
            type=_LossScaledOptimWrapper,
            cast_dtype=torch.bfloat16,
            optimizer=dict(type='SGD', lr=0.01),
            clip_grad=dict(max_norm=1.0)))
    with pytest.raises(FloatingPointError, match='grad_norm=inf'):
        runner.train()


@pytest.mark.cuda  # AmpOptimWrapper refuses to start without a GPU
def test_fp16_amp_optim_wrapper_skips_infinite_gradients(tmp_path):
    runner = _runner(
        tmp_path,
        model=_Toy(singular=True),
        optim_wrapper=dict(
            type='AmpOptimWrapper',
            optimizer=dict(type='SGD', lr=0.01),
            clip_grad=dict(max_norm=1.0)),
        train_cfg=dict(by_epoch=True, max_epochs=1))
    runner.train()
    assert runner.message_hub.get_scalar('train/grad_norm').current() \
        == float('inf')
    assert len(_checkpoints(tmp_path)) == 4


def test_checkpoint_check_refuses_what_the_iterations_did_not_see(tmp_path):
    # interval=3: iteration 2 is not checked, its checkpoint is refused.
    runner = _runner(
        tmp_path,
        interval=3,
        hooks=[_Corrupt(2, _fill_inf('bn.running_mean'))])
    with pytest.raises(FloatingPointError) as error:
        runner.train()
    message = str(error.value)
    assert ('in the checkpoint being written after training iteration 2 '
            '(epoch 1); it was not written') in message
    assert 'non-finite: state_dict/bn.running_mean' in message
    assert f'Last complete checkpoint: {tmp_path / "iter_1.pth"}.' in message
    assert _checkpoints(tmp_path) == ['iter_1.pth']


def test_checkpoint_check_covers_optimizer_state_not_the_log(tmp_path):
    runner = _runner(tmp_path, train_cfg=dict(by_epoch=True, max_epochs=1))
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, NonFiniteCheckHook))
    inf = torch.tensor([1.0, float('inf')])
    finite = dict(
        meta=dict(iter=4),
        state_dict=dict(w=torch.ones(2), n=torch.tensor(3)),
        message_hub=dict(log_scalars=dict(grad_norm=inf)))
    hook.before_save_checkpoint(runner, finite)
    broken = dict(finite, optimizer=dict(state={0: dict(momentum_buffer=inf)}))
    with pytest.raises(FloatingPointError) as error:
        hook.before_save_checkpoint(runner, broken)
    assert ('1 of 2 entries non-finite: optimizer/state/0/momentum_buffer'
            in str(error.value))


def test_non_finite_weights_before_training(tmp_path):
    model = _Toy()
    with torch.no_grad():
        model.linear.weight[0, 0] = float('nan')
    with pytest.raises(FloatingPointError) as error:
        _runner(tmp_path, model=model).train()
    message = str(error.value)
    assert 'before the first training iteration' in message
    assert 'non-finite: linear.weight' in message
    assert 'Last complete checkpoint' not in message
    assert _checkpoints(tmp_path) == []


@pytest.mark.parametrize('interval', [0, -1, 1.5, True])
def test_interval_must_be_a_positive_integer(interval):
    with pytest.raises(ValueError, match='positive integer'):
        NonFiniteCheckHook(interval=interval)


_DDP_SCRIPT = """
import os.path as osp
import sys

import torch
import torch.distributed as dist

sys.path.insert(0, {here!r})
from test_non_finite_check_hook import _Corrupt, _Data, _runner  # noqa


def corrupt(model):
    # Only rank 1's own BN statistics (not broadcast) go non-finite.
    if dist.get_rank() == 1:
        model.module.bn.running_var.fill_(float('inf'))


dist.init_process_group(backend='gloo')
work_dir = {work_dir!r}
runner = _runner(
    work_dir,
    data=_Data(size=32),
    hooks=[_Corrupt(3, corrupt)],
    launcher='pytorch',
    env_cfg=dict(dist_cfg=dict(backend='gloo')),
    cfg=dict(
        model_wrapper_cfg=dict(
            type='MMDistributedDataParallel',
            device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=True)))  # _Toy.root
try:
    runner.train()
except FloatingPointError as error:
    with open(osp.join(work_dir, f'rank{{dist.get_rank()}}.txt'), 'w') as f:
        f.write(str(error))
    # Both ranks raised: wait for each other, or torchrun stops the other
    # as soon as one exits.
    dist.barrier()
    sys.exit(1)
"""


def test_ddp_ranks_stop_together(tmp_path):
    script = tmp_path / 'ddp.py'
    work_dir = tmp_path / 'work'
    script.write_text(
        _DDP_SCRIPT.format(
            here=osp.dirname(osp.abspath(__file__)), work_dir=str(work_dir)))
    env = dict(os.environ, OMP_NUM_THREADS='1')
    result = subprocess.run([
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
        '--master_port',
        str(_free_port()),
        str(script)
    ],
                            cwd=ROOT,
                            env=env,
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode != 0
    log = result.stdout + result.stderr
    assert 'Distributed training: True' in log, log[-3000:]
    rank0 = (work_dir / 'rank0.txt').read_text()
    rank1 = (work_dir / 'rank1.txt').read_text()
    for message in (rank0, rank1):
        assert 'at training iteration 3 (epoch 1, batch 3/4)' in message
        assert f'{work_dir / "iter_2.pth"}' in message
    assert 'non-finite values on another rank' in rank0
    # Named as in the checkpoint, without DDP's "module." prefix.
    assert '1 of 7 parameters and buffers non-finite: bn.running_var' \
        in rank1
    assert _checkpoints(work_dir) == ['iter_1.pth', 'iter_2.pth']


def test_demo_training_stops_and_keeps_finite_checkpoints(tmp_path):
    # lr=1e20 without warm-up: iteration 1 is finite, iteration 2 is not.
    config = tmp_path / 'cfg.py'
    config.write_text(
        f'_base_ = [{CONFIG!r}]\n'
        "custom_hooks = [dict(type='sdt3_mm.NonFiniteCheckHook')]\n"
        'optim_wrapper = dict(optimizer=dict(lr=1e20))\n'
        'param_scheduler = []\n'
        'default_hooks = dict(checkpoint=dict(\n'
        '    by_epoch=False, interval=1, max_keep_ckpts=-1))\n')
    work_dir = tmp_path / 'work'
    options = [
        f'train_dataloader.dataset.data_root={tmp_path / "shapes"}',
        'train_dataloader.dataset.num_train=6',
        'train_dataloader.dataset.num_val=6', 'train_dataloader.batch_size=2',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False', 'train_cfg.max_epochs=1'
    ]
    result = subprocess.run([
        sys.executable, TRAIN,
        str(config), '--work-dir',
        str(work_dir), '--no-validate', '--cfg-options', *options
    ],
                            cwd=ROOT,
                            capture_output=True,
                            text=True,
                            timeout=600)
    assert result.returncode != 0, result.stdout[-3000:]
    error = result.stderr.strip().splitlines()
    assert 'FloatingPointError: Non-finite values at training iteration 2 ' \
        '(epoch 1, batch 2/3):' in error, result.stderr[-3000:]
    assert 'parameters and buffers non-finite: backbone.' in result.stderr
    assert 'Learning rate in use: lr=1e+20.' in error
    resume = work_dir / 'iter_1.pth'
    assert f'Last complete checkpoint: {resume}.' in result.stderr
    assert _checkpoints(work_dir) == ['iter_1.pth']
