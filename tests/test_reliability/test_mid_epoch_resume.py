"""A run resumed from an iteration checkpoint taken inside an epoch ends at
its configured iteration with the weights of a run never interrupted
(``ResumableEpochBasedTrainLoop``), and mmengine's own epoch loop is
refused such a checkpoint (``check_mid_epoch_resume``)."""
import os
import os.path as osp
import re
import shutil
import subprocess
from types import SimpleNamespace

import pytest
import torch
from demo_runs import small_set_options, train_command
from torch.utils.data import DataLoader, Dataset

from sdt3_mm.reliability import (ResumableEpochBasedTrainLoop,
                                 check_mid_epoch_resume, safe_torch_load)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs/demo/e-spikeformer-t_shapes-cls.py')
LOOP = 'sdt3_mm.ResumableEpochBasedTrainLoop'


def _options(data_root):
    # 2 epochs of 4 batches, a checkpoint after every iteration. Fresh
    # workers every epoch, seeded from the run's seed: the same random
    # flips before and after a resume (see the loop's docstring).
    data = small_set_options(
        data_root,
        num_train=16,
        num_val=2,
        loaders=('train_dataloader', ),
        batch_size=4,
        num_workers=1,
        persistent_workers=False)
    return data + [
        'train_dataloader.dataset.image_size=17', 'randomness.seed=0',
        'randomness.deterministic=True', 'train_cfg._delete_=True',
        f'train_cfg.type={LOOP}', 'train_cfg.max_epochs=2',
        'default_hooks.checkpoint.by_epoch=False',
        'default_hooks.checkpoint.interval=1',
        'default_hooks.checkpoint.max_keep_ckpts=20',
        'default_hooks.logger.interval=1'
    ]


def _train(work_dir, data_root, *extra):
    # One torch thread: on 2 cores shared with other processes, torch's
    # spinning intra-op threads made an iteration take seconds, not 0.3 s.
    result = subprocess.run(
        train_command(CONFIG, work_dir, _options(data_root), *extra),
        cwd=ROOT,
        env=dict(os.environ, OMP_NUM_THREADS='1'),
        capture_output=True,
        text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.fixture(scope='module')
def straight(tmp_path_factory):
    """Work dir and data root of an uninterrupted run, iter_1..8.pth."""
    root = tmp_path_factory.mktemp('mid_epoch')
    data_root, work_dir = str(root / 'shapes'), str(root / 'straight')
    _train(work_dir, data_root)
    return work_dir, data_root


# iter_6: two of epoch 2's four batches trained; iter_4: all of epoch 1's,
# saved before its after_train_epoch hooks ran.
@pytest.mark.parametrize('iteration, first_logged', [(6, '[2][3/4]'),
                                                     (4, '[2][1/4]')])
def test_resume_inside_an_epoch_ends_at_the_uninterrupted_weights(
        straight, tmp_path, iteration, first_logged):
    work_dir, data_root = straight
    resumed = str(tmp_path / 'resumed')
    os.makedirs(resumed)
    checkpoint = shutil.copy(
        osp.join(work_dir, f'iter_{iteration}.pth'), resumed)

    log = _train(resumed, data_root, '--resume', checkpoint)

    # The log counts the resumed epoch's batches from the first untrained.
    trained = [line for line in log.splitlines() if 'Epoch(train)' in line]
    assert f'Epoch(train) {first_logged}' in trained[0], trained
    assert len(trained) == 8 - iteration
    assert not osp.exists(osp.join(resumed, 'iter_9.pth'))
    expected = safe_torch_load(osp.join(work_dir, 'iter_8.pth'))
    result = safe_torch_load(osp.join(resumed, 'iter_8.pth'))
    assert expected['meta']['iter'] == result['meta']['iter'] == 8
    assert expected['state_dict'].keys() == result['state_dict'].keys()
    for key, value in expected['state_dict'].items():
        assert torch.equal(value, result['state_dict'][key]), key


def test_refusal_names_the_newest_epoch_checkpoint(straight, tmp_path):
    checkpoint = shutil.copy(
        osp.join(straight[0], 'iter_6.pth'), str(tmp_path))
    cfg = dict(
        train_cfg=dict(by_epoch=True, max_epochs=2),
        resume=True,
        load_from=checkpoint)
    with pytest.raises(RuntimeError) as error:
        check_mid_epoch_resume(cfg)
    message = str(error.value)
    for part in ('taken inside epoch 2, after iteration 6 (2 of its 4',
                 'train that epoch again', LOOP,
                 f'there is no epoch_<n>.pth in {tmp_path}'):
        assert part in message, message

    for number in (2, 10, 9):
        (tmp_path / f'epoch_{number}.pth').touch()
    with pytest.raises(
            RuntimeError,
            match=re.escape('newest epoch checkpoint, ' +
                            osp.join(str(tmp_path), 'epoch_10.pth'))):
        check_mid_epoch_resume(cfg)

    # --resume without a path: the runner's latest checkpoint.
    (tmp_path / 'last_checkpoint').write_text(checkpoint)
    with pytest.raises(RuntimeError, match='inside epoch 2'):
        check_mid_epoch_resume(
            dict(cfg, load_from=None, work_dir=str(tmp_path)))
    # Not resuming: nothing is read.
    check_mid_epoch_resume(dict(cfg, resume=False, load_from='missing.pth'))
    # Loops that do not replay the epoch.
    not_replaying = (dict(type=LOOP, max_epochs=2), dict(by_epoch=False))
    for train_cfg in not_replaying:
        check_mid_epoch_resume(dict(cfg, train_cfg=train_cfg))


def test_train_tool_refuses_mmengine_loop_inside_an_epoch(straight, tmp_path):
    """tools/train.py checks before it builds the runner: nothing is
    trained, no checkpoint is written."""
    work_dir, data_root = straight
    checkpoint = shutil.copy(osp.join(work_dir, 'iter_6.pth'), str(tmp_path))
    options = _options(data_root)
    options[options.index(f'train_cfg.type={LOOP}')] = 'train_cfg.by_epoch=1'
    result = subprocess.run(
        train_command(CONFIG, str(tmp_path), options, '--resume', checkpoint),
        cwd=ROOT,
        env=dict(os.environ, OMP_NUM_THREADS='1'),
        capture_output=True,
        text=True)
    assert result.returncode != 0
    assert 'taken inside epoch 2, after iteration 6' in result.stderr
    assert not osp.exists(osp.join(str(tmp_path), 'iter_7.pth'))


def _checkpoint(epoch, iteration, per_epoch=4):
    runtime_info = {} if per_epoch is None else dict(
        max_iters=2 * per_epoch, max_epochs=2)
    return dict(
        meta=dict(epoch=epoch, iter=iteration),
        message_hub=dict(runtime_info=runtime_info))


@pytest.mark.parametrize('train_cfg, scope', [
    (dict(by_epoch=True, max_epochs=2), None),
    (dict(type='EpochBasedTrainLoop', max_epochs=2), 'mmpretrain'),
    (dict(type='mmengine.EpochBasedTrainLoop', max_epochs=2), None)
])
@pytest.mark.parametrize(
    'checkpoint, inside',
    [
        (_checkpoint(2, 8), False),  # epoch_2.pth
        (_checkpoint(1, 4), False),  # epoch_1.pth
        (_checkpoint(1, 5), True),
        (_checkpoint(1, 8), True),  # last iteration of epoch 2
        (_checkpoint(0, 4), True),  # last iteration of epoch 1
        # No max_iters in the message hub: iter a multiple of epoch.
        (_checkpoint(1, 4, per_epoch=None), False),
        (_checkpoint(0, 3, per_epoch=None), True),
        (_checkpoint(2, 9, per_epoch=None), True),
    ])
def test_refusal_of_mmengine_epoch_loop(train_cfg, scope, checkpoint, inside):
    cfg = dict(train_cfg=train_cfg, default_scope=scope)
    if not inside:
        check_mid_epoch_resume(cfg, checkpoint)
        return
    with pytest.raises(RuntimeError, match='resume from an epoch checkpoint'):
        check_mid_epoch_resume(cfg, checkpoint)
    check_mid_epoch_resume(
        dict(cfg, train_cfg=dict(type=LOOP, max_epochs=2)), checkpoint)


class _Numbers(Dataset):
    metainfo = dict(classes=())

    def __len__(self):
        return 12

    def __getitem__(self, index):
        return index


class _Runner:
    """What the loop reads of mmengine's runner; records hooks and steps."""

    def __init__(self, saved_info):
        self.message_hub = SimpleNamespace(get_info=saved_info.get)
        self.visualizer = SimpleNamespace()
        self.val_loop = None
        self.optim_wrapper = None
        self.model = SimpleNamespace(
            train=lambda: None, train_step=self._train_step)
        self.hooks, self.trained = [], []

    def call_hook(self, name, batch_idx=None, **kwargs):
        self.hooks.append(name if batch_idx is None else (name, batch_idx))

    def _train_step(self, data_batch, optim_wrapper):
        self.trained.append(data_batch.tolist())


def _loop(epoch, iteration, saved_info):
    runner = _Runner(saved_info)
    # 4 batches of 3 per epoch, in order.
    loop = ResumableEpochBasedTrainLoop(
        runner, DataLoader(_Numbers(), batch_size=3), max_epochs=2)
    loop._epoch, loop._iter = epoch, iteration  # as Runner.resume does
    return loop, runner


def test_loop_skips_the_trained_batches_without_hooks():
    loop, runner = _loop(1, 6, dict(max_iters=8, max_epochs=2))
    loop.run()
    assert runner.trained == [[6, 7, 8], [9, 10, 11]]
    assert runner.hooks == [
        'before_train', 'before_train_epoch', ('before_train_iter', 2),
        ('after_train_iter', 2), ('before_train_iter', 3),
        ('after_train_iter', 3), 'after_train_epoch', 'after_train'
    ]
    assert (loop.epoch, loop.iter) == (2, 8)

    # Checkpoint at epoch 1's last iteration: its after_train_epoch runs.
    loop, runner = _loop(0, 4, dict(max_iters=8, max_epochs=2))
    loop.run()
    assert runner.hooks[:4] == [
        'before_train', 'before_train_epoch', 'after_train_epoch',
        'before_train_epoch'
    ]
    assert len(runner.trained) == 4 and (loop.epoch, loop.iter) == (2, 8)

    # An epoch checkpoint taken with another batch size: as mmengine's.
    loop, runner = _loop(1, 5, dict(max_iters=10, max_epochs=2))
    loop.run()
    assert len(runner.trained) == 4 and loop.iter == 9


@pytest.mark.parametrize('iteration, saved_info, words', [
    (11, {}, 'iteration 11 is outside that epoch, which with 4 batches '
     'per epoch spans iterations 4..8'),
    (7, dict(max_iters=10, max_epochs=2),
     'after 2 of its 5 batches (iteration 7), but the train dataloader '
     'now has 4')
])
def test_loop_refuses_an_inconsistent_checkpoint(iteration, saved_info, words):
    loop, runner = _loop(1, iteration, saved_info)
    with pytest.raises(RuntimeError) as error:
        loop.run()
    assert words in str(error.value)
    assert runner.trained == []
