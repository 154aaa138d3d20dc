"""A kill during a checkpoint write loses no checkpoint
(``sdt3_mm.AtomicCheckpointHook``), and ``tools/train.py --resume`` without
a path finds the newest complete checkpoint whatever state
``last_checkpoint`` is in
(``sdt3_mm.reliability.find_resumable_checkpoint``)."""
import glob
import importlib.util
import os
import os.path as osp
import shutil
import signal
import subprocess
import uuid
import zipfile

import pytest
import torch
from demo_runs import IN_PROCESS, small_set_options, train_command
from mmengine.config import Config
from mmengine.evaluator import BaseMetric
from mmengine.hooks import CheckpointHook, Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

from sdt3_mm.reliability import (AtomicCheckpointHook, checkpoint_defect,
                                 find_resumable_checkpoint,
                                 is_complete_checkpoint,
                                 safe_checkpoint_loading, safe_torch_load,
                                 write_atomic)
from sdt3_mm.reliability.checkpoint_files import (is_temp_file,
                                                  remove_temp_files, temp_path)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HERE = osp.dirname(osp.abspath(__file__))
TRAIN = osp.join(ROOT, 'tools/train.py')
CONFIG = osp.join(ROOT, 'configs/demo/e-spikeformer-t_shapes-cls.py')


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
def _save_complete(path, value=0.):
    torch.save({'state_dict': {'w': torch.full((4, ), value)}}, path)
    return path


def _save_truncated(path):
    _save_complete(path)
    with open(path, 'rb+') as f:
        f.truncate(os.path.getsize(path) // 2)
    return path


def _checkpoints(folder):
    return sorted(name for name in os.listdir(folder) if name.endswith('.pth'))


def _temp_files(folder):
    return [name for name in os.listdir(folder) if is_temp_file(name)]


# ---------------------------------------------------------------------------
# checkpoint_files: the finder and the file helpers (no training)
# ---------------------------------------------------------------------------
def test_checkpoint_defect_names_what_is_wrong(tmp_path):
    assert checkpoint_defect(str(tmp_path / 'none.pth')) == 'missing'
    (tmp_path / 'empty.pth').write_bytes(b'')
    assert checkpoint_defect(str(tmp_path / 'empty.pth')) == 'empty (0 bytes)'
    truncated = _save_truncated(str(tmp_path / 'cut.pth'))
    assert checkpoint_defect(truncated).startswith('truncated')
    (tmp_path / 'text.pth').write_text('not a checkpoint')
    assert checkpoint_defect(str(tmp_path /
                                 'text.pth')).startswith('not a PyTorch file')
    with zipfile.ZipFile(tmp_path / 'plain.zip', 'w') as archive:
        archive.writestr('archive/notes.txt', 'no pickle')
    assert 'no data.pkl' in checkpoint_defect(str(tmp_path / 'plain.zip'))
    complete = _save_complete(str(tmp_path / 'ok.pth'))
    assert checkpoint_defect(complete) is None
    assert is_complete_checkpoint(complete)
    assert not is_complete_checkpoint(truncated)


def test_one_file_check_serves_loading_and_resuming(tmp_path):
    """checkpoint_defect (resume) and safe_torch_load (loading) read a file
    through the same check: a legacy (pre-1.6) file loads, but is no
    checkpoint to resume from (its completeness cannot be told)."""
    legacy = str(tmp_path / 'legacy.pth')
    torch.save({'w': torch.ones(2)},
               legacy,
               _use_new_zipfile_serialization=False)
    assert torch.equal(safe_torch_load(legacy)['w'], torch.ones(2))
    assert checkpoint_defect(legacy).startswith("in torch's legacy")
    assert not is_complete_checkpoint(legacy)


def test_temp_files_are_hidden_and_removed(tmp_path):
    path = temp_path(str(tmp_path / 'iter_4.pth'))
    assert path == str(tmp_path / '.iter_4.pth.partial.tmp')
    assert is_temp_file(osp.basename(path))
    for name in ('iter_4.pth', '.partial.tmp', 'x.partial.tmp', '.x.tmp'):
        assert not is_temp_file(name), name
    _save_complete(path)
    (tmp_path / '.x.tmp').write_text('someone else\'s')
    assert remove_temp_files(str(tmp_path)) == [path]
    assert sorted(os.listdir(tmp_path)) == ['.x.tmp']
    assert remove_temp_files(str(tmp_path / 'missing')) == []

    marker = str(tmp_path / 'last_checkpoint')
    write_atomic(marker, 'a')
    write_atomic(marker, 'b')
    assert open(marker).read() == 'b'
    assert sorted(os.listdir(tmp_path)) == ['.x.tmp', 'last_checkpoint']


def test_finder_trusts_a_complete_last_checkpoint(tmp_path, capsys):
    work = str(tmp_path)
    _save_complete(osp.join(work, 'iter_8.pth'))
    named = _save_complete(osp.join(work, 'iter_4.pth'))
    (tmp_path / 'last_checkpoint').write_text(named)
    assert find_resumable_checkpoint(work) == named
    assert 'the checkpoint named in' in capsys.readouterr().out


@pytest.mark.parametrize('marker', [None, '', 'missing', 'truncated'])
def test_finder_takes_the_largest_complete_n(tmp_path, capsys, marker):
    work = str(tmp_path)
    # Progress order, not name order: iter_10 is after iter_9.
    _save_complete(osp.join(work, 'iter_9.pth'))
    newest = _save_complete(osp.join(work, 'iter_10.pth'))
    _save_truncated(osp.join(work, 'iter_12.pth'))
    # Neither temp files nor other names are checkpoints to resume from.
    _save_complete(temp_path(osp.join(work, 'iter_14.pth')))
    for name in ('best_acc_iter_20.pth', 'iter_30.pth.tmp',
                 'iter_40-0123abcd.pth', 'iter_50.pt'):
        _save_complete(osp.join(work, name))
    if marker is not None:
        target = {
            '': '',
            'missing': osp.join(work, 'iter_16.pth'),
            'truncated': osp.join(work, 'iter_12.pth')
        }[marker]
        (tmp_path / 'last_checkpoint').write_text(target)
    assert find_resumable_checkpoint(work) == newest
    out = capsys.readouterr().out
    why = {
        None: 'No last_checkpoint in',
        '': 'last_checkpoint is empty',
        'missing': 'iter_16.pth, which is missing',
        'truncated': 'iter_12.pth, which is truncated'
    }[marker]
    assert why in out
    assert f'resuming from the newest complete checkpoint {newest}' in out
    if marker != 'truncated':
        assert '(skipped iter_12.pth: truncated' in out
    else:
        assert 'skipped' not in out


def test_finder_orders_mixed_kinds_by_mtime(tmp_path):
    work = str(tmp_path)
    # epoch_N and iter_N cannot be compared: the file written last wins.
    older = _save_complete(osp.join(work, 'epoch_5.pth'))
    newer = _save_complete(osp.join(work, 'iter_3.pth'))
    os.utime(older, (1000, 1000))
    os.utime(newer, (2000, 2000))
    assert find_resumable_checkpoint(work, logger='silent') == newer
    os.utime(older, (3000, 3000))
    assert find_resumable_checkpoint(work, logger='silent') == older


def test_finder_looks_where_last_checkpoint_points(tmp_path):
    work, out_dir = tmp_path / 'work', tmp_path / 'out'
    work.mkdir()
    out_dir.mkdir()
    # CheckpointHook(out_dir=...) writes checkpoints there, last_checkpoint
    # into the work dir.
    _save_complete(str(out_dir / 'epoch_2.pth'))
    _save_truncated(str(out_dir / 'epoch_3.pth'))
    (work / 'last_checkpoint').write_text(str(out_dir / 'epoch_3.pth'))
    older = _save_complete(str(work / 'epoch_2.pth'))
    os.utime(older, (1000, 1000))
    # The same N twice: the mtime breaks the tie.
    assert find_resumable_checkpoint(
        str(work), logger='silent') == str(out_dir / 'epoch_2.pth')


def test_finder_returns_none_without_a_complete_checkpoint(tmp_path, capsys):
    work = str(tmp_path)
    assert find_resumable_checkpoint(work) is None
    _save_truncated(osp.join(work, 'epoch_1.pth'))
    (tmp_path / 'last_checkpoint').write_text(osp.join(work, 'epoch_1.pth'))
    assert find_resumable_checkpoint(work) is None
    out = capsys.readouterr().out
    assert 'nothing to resume from' in out
    assert 'which is truncated' in out and 'skipped' not in out


def _train_tool(monkeypatch):
    # tools/train.py imports runner_args from its own folder.
    monkeypatch.syspath_prepend(osp.dirname(TRAIN))
    spec = importlib.util.spec_from_file_location('sdt3_train_tool', TRAIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_tool_resume_choices(tmp_path, monkeypatch, capsys):
    tool = _train_tool(monkeypatch)
    work = str(tmp_path)
    cfg = Config(dict(work_dir=work, load_from='pretrained.pth'))
    tool.set_resume(cfg, 'auto')
    assert cfg.resume is False and cfg.load_from == 'pretrained.pth'
    assert 'training from scratch, with the weights of load_from=' \
        'pretrained.pth' in capsys.readouterr().out

    complete = _save_complete(osp.join(work, 'epoch_1.pth'))
    truncated = _save_truncated(osp.join(work, 'epoch_2.pth'))
    tool.set_resume(cfg, 'auto')
    assert cfg.resume is True and cfg.load_from == complete

    with pytest.raises(ValueError) as error:
        tool.set_resume(cfg, truncated)
    message = str(error.value)
    assert message.startswith(
        f'--resume: checkpoint {truncated} is truncated or damaged: its zip '
        'directory cannot be read ('), message
    assert message.endswith(
        '): an incomplete file, not resumable; the newest complete '
        f'checkpoint in its folder is {complete}'), message
    with pytest.raises(FileNotFoundError, match='does not exist'):
        tool.set_resume(cfg, osp.join(work, 'epoch_3.pth'))
    tool.set_resume(cfg, complete)
    assert cfg.resume is True and cfg.load_from == complete


# ---------------------------------------------------------------------------
# AtomicCheckpointHook in a toy runner (in-process, fast)
# ---------------------------------------------------------------------------
class _Interrupted(Exception):
    """Stands in for a kill: raised inside ``runner.save_checkpoint``."""


class _FailSave(Hook):
    """Raise while the checkpoint of ``epoch`` (the periodic one, or the
    best one, which is saved without optimizer) is being written."""

    def __init__(self, epoch, best=False):
        self.epoch, self.best = epoch, best

    def before_save_checkpoint(self, runner, checkpoint):
        is_best = 'optimizer' not in checkpoint
        if checkpoint['meta']['epoch'] == self.epoch and is_best == self.best:
            raise _Interrupted


class _ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=out.pow(2).mean())
        return [out]


class _ToyDataset(torch.utils.data.Dataset):

    def __len__(self):
        return 4

    def __getitem__(self, index):
        return dict(inputs=torch.tensor([float(index), 1.]))


class _Scores(BaseMetric):
    """``acc`` is the next of ``scores`` at each evaluation."""

    def __init__(self, scores):
        super().__init__()
        self.scores = list(scores)

    def process(self, data_batch, data_samples):
        self.results.append(0)

    def compute_metrics(self, results):
        return dict(acc=self.scores.pop(0))


def _toy_runner(work_dir,
                hook,
                max_epochs,
                scores=None,
                hooks=(),
                resume_from=None):
    loader = dict(
        dataset=_ToyDataset(),
        sampler=dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='default_collate'),
        batch_size=2,
        num_workers=0)
    val = {}
    if scores is not None:
        val = dict(
            val_dataloader=loader,
            val_cfg=dict(),
            val_evaluator=[_Scores(scores)])
    return Runner(
        model=_ToyModel(),
        work_dir=str(work_dir),
        experiment_name=f'toy_{uuid.uuid4().hex}',
        train_dataloader=loader,
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs, val_interval=1),
        default_hooks=dict(checkpoint=hook, logger=None),
        custom_hooks=list(hooks),
        load_from=resume_from,
        resume=resume_from is not None,
        **val)


@pytest.mark.parametrize('hook_type', [CheckpointHook, AtomicCheckpointHook])
def test_kill_during_a_save_with_max_keep_ckpts_1(tmp_path, hook_type):
    hook = hook_type(interval=1, max_keep_ckpts=1)
    runner = _toy_runner(tmp_path, hook, 3, hooks=[_FailSave(2)])
    with pytest.raises(_Interrupted):
        runner.train()
    marker = (tmp_path / 'last_checkpoint').read_text()
    assert marker == str(tmp_path / 'epoch_1.pth')
    if hook_type is CheckpointHook:
        # Why the hook exists: mmengine removed epoch_1 before writing
        # epoch_2, so nothing is left to resume from.
        assert _checkpoints(tmp_path) == []
        assert find_resumable_checkpoint(str(tmp_path), 'silent') is None
    else:
        assert _checkpoints(tmp_path) == ['epoch_1.pth']
        assert is_complete_checkpoint(marker)
        assert _temp_files(tmp_path) == []


@pytest.mark.parametrize('hook_type', [CheckpointHook, AtomicCheckpointHook])
def test_kill_during_a_best_save_keeps_the_previous_best(tmp_path, hook_type):
    hook = hook_type(interval=1, max_keep_ckpts=1, save_best='acc')
    runner = _toy_runner(
        tmp_path, hook, 3, scores=[0.5, 0.9], hooks=[_FailSave(2, True)])
    with pytest.raises(_Interrupted):
        runner.train()
    best = [name for name in _checkpoints(tmp_path) if name.startswith('b')]
    if hook_type is CheckpointHook:
        assert best == []  # removed before the new best was written
    else:
        assert best == ['best_acc_epoch_1.pth']
        assert is_complete_checkpoint(str(tmp_path / best[0]))
        assert _temp_files(tmp_path) == []


def test_files_after_a_run_match_mmengine(tmp_path):
    # Leftovers of a killed run (and a file that is not ours).
    for name in ('.epoch_9.pth.partial.tmp', '.last_checkpoint.partial.tmp',
                 '.notes.tmp'):
        (tmp_path / name).write_bytes(b'PK\x03\x04half')
    hook = AtomicCheckpointHook(interval=1, max_keep_ckpts=2, save_best='acc')
    _toy_runner(tmp_path, hook, 4, scores=[0.1, 0.5, 0.3, 0.9]).train()
    assert _checkpoints(tmp_path) == [
        'best_acc_epoch_4.pth', 'epoch_3.pth', 'epoch_4.pth'
    ]
    assert _temp_files(tmp_path) == []
    assert (tmp_path / '.notes.tmp').is_file()
    last = str(tmp_path / 'epoch_4.pth')
    assert (tmp_path / 'last_checkpoint').read_text() == last
    runtime = safe_torch_load(last)['message_hub']['runtime_info']
    assert runtime['keep_ckpt_ids'] == [3, 4]
    assert runtime['best_ckpt'] == str(tmp_path / 'best_acc_epoch_4.pth')
    assert runtime['best_score'] == 0.9


def test_a_stale_checkpoint_is_removed_on_resume(tmp_path):
    hook = AtomicCheckpointHook(interval=1, max_keep_ckpts=1)
    _toy_runner(tmp_path, hook, 3).train()
    assert _checkpoints(tmp_path) == ['epoch_3.pth']
    last = str(tmp_path / 'epoch_3.pth')
    # The new checkpoint lists the one it replaces until that is removed.
    runtime = safe_torch_load(last)['message_hub']['runtime_info']
    assert runtime['keep_ckpt_ids'] == [2, 3]
    # A kill right after epoch_3 was written left epoch_2 behind.
    shutil.copy(last, tmp_path / 'epoch_2.pth')
    resumed = AtomicCheckpointHook(interval=1, max_keep_ckpts=1)
    with safe_checkpoint_loading():
        _toy_runner(tmp_path, resumed, 3, resume_from=last).train()
    assert _checkpoints(tmp_path) == ['epoch_3.pth']


# ---------------------------------------------------------------------------
# tools/train.py end to end
# ---------------------------------------------------------------------------
def _env():
    env = dict(os.environ)
    env['PYTHONPATH'] = HERE + os.pathsep + env.get('PYTHONPATH', '')
    # One thread: two processes on two busy cores run many times faster.
    env['OMP_NUM_THREADS'] = '1'
    return env


def _train(config, work_dir, data_root, max_epochs, *extra, max_keep=-1):
    """The command line of tools/train.py on the demo set cut to one batch
    of two images per epoch, a checkpoint each epoch."""
    data = small_set_options(
        data_root,
        num_train=2,
        num_val=1,
        loaders=('train_dataloader', ),
        batch_size=2,
        **IN_PROCESS)
    return train_command(
        config, work_dir, data + [
            f'train_cfg.max_epochs={max_epochs}',
            'default_hooks.checkpoint.type=sdt3_mm.AtomicCheckpointHook',
            'default_hooks.checkpoint.interval=1',
            f'default_hooks.checkpoint.max_keep_ckpts={max_keep}'
        ], *extra)


def _run(command):
    result = subprocess.run(
        command,
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600)
    return result.returncode, result.stdout + result.stderr


def _meta(path):
    return safe_torch_load(path)['meta']


def test_killed_mid_write_resumes_from_the_last_complete_checkpoint(tmp_path):
    data_root, work = str(tmp_path / 'shapes'), str(tmp_path / 'work')
    config = tmp_path / 'kill_cfg.py'
    config.write_text(
        f'_base_ = [{CONFIG!r}]\n'
        "custom_imports = dict(imports=['sdt3_mm', 'checkpoint_kill_hook'],"
        ' allow_failed_imports=False)\n'
        "custom_hooks = [dict(type='sdt3_mm.SafeCheckpointLoadingHook'),\n"
        "                dict(type='KillDuringCheckpointHook', epoch=2)]\n")
    code, log = _run(_train(str(config), work, data_root, 3, max_keep=1))
    assert code == -signal.SIGKILL, log[-3000:]
    assert _checkpoints(work) == ['epoch_1.pth']
    first = osp.join(work, 'epoch_1.pth')
    assert is_complete_checkpoint(first)
    assert open(osp.join(work, 'last_checkpoint')).read() == first
    # What a kill during the file write (rather than during pickling)
    # leaves: the temp file, which the next start removes.
    leftover = temp_path(osp.join(work, 'epoch_2.pth'))
    with open(leftover, 'wb') as f:
        f.write(b'PK\x03\x04cut short')

    code, log = _run(
        _train(CONFIG, work, data_root, 3, '--resume', max_keep=1))
    assert code == 0, log[-3000:]
    assert f'Resuming from {first}, the checkpoint named in' in log
    assert 'resumed epoch: 1, iter: 1' in log
    assert f'Removed {leftover}' in log
    assert _checkpoints(work) == ['epoch_3.pth']
    assert _temp_files(work) == []
    assert _meta(osp.join(work, 'epoch_3.pth'))['iter'] == 3


def test_resume_without_a_usable_last_checkpoint(tmp_path):
    data_root, base = str(tmp_path / 'shapes'), str(tmp_path / 'base')
    code, log = _run(_train(CONFIG, base, data_root, 2))
    assert code == 0, log[-3000:]
    assert _checkpoints(base) == ['epoch_1.pth', 'epoch_2.pth']

    works = {}
    for case in ('removed', 'empty', 'truncated'):
        work = works[case] = str(tmp_path / case)
        shutil.copytree(base, work)
        marker = osp.join(work, 'last_checkpoint')
        if case == 'removed':
            os.remove(marker)
        elif case == 'empty':
            open(marker, 'w').close()
        else:
            second = osp.join(work, 'epoch_2.pth')
            with open(second, 'rb+') as f:
                f.truncate(os.path.getsize(second) // 2)
            with open(marker, 'w') as f:
                f.write(second)
    # The three runs at once: most of their time is start-up (imports).
    processes = {}
    for case, work in works.items():
        processes[case] = subprocess.Popen(
            _train(CONFIG, work, data_root, 3, '--resume'),
            cwd=ROOT,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True)
    logs = {}
    for case, process in processes.items():
        logs[case] = process.communicate(timeout=600)[0]
        assert process.returncode == 0, (case, logs[case][-3000:])

    for case in ('removed', 'empty'):
        work, log = works[case], logs[case]
        newest = osp.join(work, 'epoch_2.pth')
        why = ('No last_checkpoint in'
               if case == 'removed' else 'last_checkpoint is empty')
        assert why in log, case
        assert ('resuming from the newest complete checkpoint '
                f'{newest}.') in log, case
        assert 'resumed epoch: 2, iter: 2' in log, case
        assert _meta(osp.join(work, 'epoch_3.pth'))['iter'] == 3, case

    work, log = works['truncated'], logs['truncated']
    second = osp.join(work, 'epoch_2.pth')
    assert (f'points at {second}, which is truncated or damaged: its zip '
            'directory cannot be read (') in log
    assert ('); resuming from the newest complete checkpoint '
            f'{osp.join(work, "epoch_1.pth")}') in log
    assert 'resumed epoch: 1, iter: 1' in log
    assert _meta(osp.join(work, 'epoch_3.pth'))['iter'] == 3
    # The truncated file was replaced by the rerun's complete epoch 2.
    assert _meta(second)['iter'] == 2


# ---------------------------------------------------------------------------
# SafeCheckpointLoadingHook puts mmengine's loaders back when a run fails
# ---------------------------------------------------------------------------
class _FailTrainStep(Hook):
    """A train step raising (as a data error or a NaN check would)."""

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        raise _Interrupted


def test_safe_loading_hook_restores_the_loaders_when_the_run_fails(tmp_path):
    """mmengine 0.10.7 calls no hook when a run raises, and the hook used to
    restore in after_run only: a failed run left all of mmengine's loaders
    replaced. Now they are back once the runner has loaded."""
    from mmengine.runner.checkpoint import CheckpointLoader

    from sdt3_mm.reliability import (SafeCheckpointLoadingHook,
                                     StrictLoadingHook)
    before = dict(CheckpointLoader._schemes)
    _toy_runner(tmp_path / 'first', CheckpointHook(interval=1), 1).train()
    checkpoint = str(tmp_path / 'first' / 'epoch_1.pth')
    bad_shape = str(tmp_path / 'bad_shape.pth')
    saved = safe_torch_load(checkpoint)
    saved['state_dict']['linear.weight'] = torch.zeros(3, 2)
    torch.save(saved, bad_shape)
    # a fresh run and a resumed one whose train step raises; a resume that
    # StrictLoadingHook refuses (after the checkpoint is read)
    for name, resume_from, error in [('fresh', None, _Interrupted),
                                     ('resumed', checkpoint, _Interrupted),
                                     ('refused', bad_shape, RuntimeError)]:
        runner = _toy_runner(
            tmp_path / name,
            CheckpointHook(interval=1),
            3,
            hooks=[
                SafeCheckpointLoadingHook(),
                StrictLoadingHook(),
                _FailTrainStep()
            ],
            resume_from=resume_from)
        with pytest.raises(error):
            runner.train()
        assert dict(CheckpointLoader._schemes) == before, name


# ---------------------------------------------------------------------------
# A full disk: the error names the checkpoint and what a save needs
# ---------------------------------------------------------------------------
@pytest.mark.skipif(not osp.exists('/dev/full'), reason='needs /dev/full')
def test_a_full_disk_names_the_checkpoint(tmp_path):
    """Before: mmengine's bare '[Errno 28] No space left on device'."""
    import errno
    runner = _toy_runner(tmp_path,
                         AtomicCheckpointHook(interval=1, max_keep_ckpts=1), 2)
    # The temp file of epoch_2 is /dev/full, where every write fails with
    # ENOSPC: the disk is full at the second save.
    os.symlink('/dev/full', temp_path(str(tmp_path / 'epoch_2.pth')))
    with pytest.raises(OSError) as error:
        runner.train()
    assert error.value.errno == errno.ENOSPC
    message = str(error.value)
    assert f'no space left to write checkpoint {tmp_path}/epoch_2.pth' \
        in message
    assert 'max_keep_ckpts=1 an old checkpoint is removed only after the ' \
        'new one is complete, so the run needs 2 checkpoints' in message
    assert _checkpoints(tmp_path) == ['epoch_1.pth']
    assert is_complete_checkpoint(str(tmp_path / 'epoch_1.pth'))


@pytest.mark.parametrize('free', ['one checkpoint', 'less'])
def test_free_space_is_checked_before_the_first_save(tmp_path, monkeypatch,
                                                     free):
    """The toy model with SGD saves 3 float32 weights (12 bytes of
    tensors): room for one checkpoint but not for the two an atomic save
    with max_keep_ckpts=1 holds is warned about before the first save;
    less than one is refused before anything is written."""
    import errno

    from sdt3_mm.reliability import checkpoint_files
    free_bytes = 20 if free == 'one checkpoint' else 5
    monkeypatch.setattr(checkpoint_files, 'free_bytes', lambda _: free_bytes)
    runner = _toy_runner(tmp_path,
                         AtomicCheckpointHook(interval=1, max_keep_ckpts=1), 1)
    if free == 'less':
        with pytest.raises(OSError) as error:
            runner.train()
        assert error.value.errno == errno.ENOSPC
        message = str(error.value)
        assert (f'not enough space to write checkpoint {tmp_path}/'
                f'epoch_1.pth: 5 bytes free in {tmp_path}, and a save '
                f'needs room for the new checkpoint (about 12 bytes)'
                in message), message
        assert _checkpoints(tmp_path) == [] and _temp_files(tmp_path) == []
        return
    runner.train()
    log = ''.join(
        open(path).read() for path in glob.glob(str(tmp_path / '*' / '*.log')))
    assert (f'20 bytes free in {tmp_path}, but the run will need about '
            f'24 bytes there') in log, log
    assert _checkpoints(tmp_path) == ['epoch_1.pth']


@pytest.mark.skipif(not osp.exists('/dev/full'), reason='needs /dev/full')
def test_a_full_disk_names_last_checkpoint(tmp_path):
    import errno
    path = str(tmp_path / 'last_checkpoint')
    write_atomic(path, 'epoch_1.pth')
    os.symlink('/dev/full', temp_path(path))  # its next write: ENOSPC
    with pytest.raises(OSError) as error:
        write_atomic(path, 'epoch_2.pth')
    assert error.value.errno == errno.ENOSPC
    assert f'no space left to write {path}' in str(error.value)
    assert open(path).read() == 'epoch_1.pth'
