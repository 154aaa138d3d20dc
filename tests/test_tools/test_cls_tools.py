"""tools/train.py and tools/test.py, and MMPretrain's own train.py, on the
demo classification config with a small generated set."""
import json
import os.path as osp

import pytest
from tool_runner import ROOT, run_tool

CONFIG = osp.join(ROOT, 'configs/demo/e-spikeformer-t_shapes-cls.py')


def _small_set(data_root):
    opts = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [
            f'{loader}.dataset.data_root={data_root}',
            f'{loader}.dataset.num_train=48', f'{loader}.dataset.num_val=24',
            f'{loader}.num_workers=0', f'{loader}.persistent_workers=False'
        ]
    return opts + [
        'train_cfg.max_epochs=2', 'train_cfg.val_interval=1',
        'default_hooks.checkpoint.interval=1'
    ]


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('cls_tools')
    work_dir = str(tmp / 'work')
    data_root = str(tmp / 'shapes')
    log = run_tool([
        osp.join(ROOT, 'tools/train.py'), CONFIG, '--work-dir', work_dir,
        '--cfg-options'
    ] + _small_set(data_root), ROOT)
    return work_dir, data_root, log


def test_train_writes_checkpoints_and_reports_accuracy(trained):
    work_dir, data_root, log = trained
    assert osp.isfile(osp.join(work_dir, 'epoch_2.pth'))
    assert 'accuracy/top1' in log
    with open(osp.join(data_root, 'meta', 'settings.json')) as f:
        assert json.load(f)['num_train'] == 48


def test_test_tool_on_the_checkpoint(trained, tmp_path):
    work_dir, data_root, _ = trained
    out = run_tool([
        osp.join(ROOT, 'tools/test.py'), CONFIG,
        osp.join(work_dir, 'epoch_2.pth'), '--work-dir',
        str(tmp_path), '--cfg-options'
    ] + _small_set(data_root), ROOT)
    assert "'accuracy/top1'" in out


def test_resume_continues_from_the_checkpoint(trained, tmp_path):
    work_dir, data_root, _ = trained
    log = run_tool([
        osp.join(ROOT, 'tools/train.py'), CONFIG, '--work-dir',
        str(tmp_path), '--resume',
        osp.join(work_dir, 'epoch_2.pth'), '--cfg-options'
    ] + _small_set(data_root)[:-3] +
                   ['train_cfg.max_epochs=3', 'train_cfg.val_interval=1'],
                   ROOT)
    assert 'resumed epoch: 2' in log
    assert osp.isfile(osp.join(str(tmp_path), 'epoch_3.pth'))


def test_mmpretrain_own_train_script(tmp_path):
    import mmpretrain
    script = osp.join(
        osp.dirname(mmpretrain.__file__), '.mim', 'tools', 'train.py')
    run_tool([
        script, CONFIG, '--work-dir',
        str(tmp_path / 'work'), '--cfg-options'
    ] + _small_set(str(tmp_path / 'shapes'))[:-3] + ['train_cfg.max_epochs=1'],
             ROOT)
    assert osp.isfile(osp.join(str(tmp_path / 'work'), 'epoch_1.pth'))
