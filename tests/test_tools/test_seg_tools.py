"""tools/train.py and tools/test.py, and MMSegmentation's own train.py and
test.py, on the demo segmentation config with a small generated set."""
import os.path as osp

import mmseg
import pytest
from demo_runs import IN_PROCESS, small_set_options
from tool_runner import ROOT, run_tool

CONFIG = osp.join(ROOT, 'configs', 'demo',
                  'fpn_e-spikeformer-t_spike-fpn_shapes-seg.py')
MMSEG_TOOLS = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools')


def _small_set(data_root):
    """The demo set cut to 16 training and 8 held-out images in batches of
    4, and four iterations of training."""
    data = small_set_options(
        data_root, num_train=16, num_val=8, batch_size=4, **IN_PROCESS)
    return data + [
        'train_cfg.max_iters=4', 'train_cfg.val_interval=4',
        'default_hooks.checkpoint.interval=4'
    ]


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('seg_tools')
    work_dir = str(tmp / 'work')
    data_root = str(tmp / 'shapes_seg')
    log = run_tool([
        osp.join(ROOT, 'tools/train.py'), CONFIG, '--work-dir', work_dir,
        '--cfg-options'
    ] + _small_set(data_root))
    return work_dir, data_root, log


def test_train_reports_miou_per_class(trained):
    work_dir, data_root, log = trained
    assert osp.isfile(osp.join(work_dir, 'iter_4.pth'))
    assert osp.isfile(
        osp.join(data_root, 'annotations', 'validation', '000007.png'))
    assert 'mIoU:' in log and '| background |' in log and '|   cross    |' \
        in log


def test_test_tool_on_the_checkpoint(trained, tmp_path):
    work_dir, data_root, _ = trained
    out = run_tool([
        osp.join(ROOT, 'tools/test.py'), CONFIG,
        osp.join(work_dir, 'iter_4.pth'), '--work-dir',
        str(tmp_path), '--cfg-options'
    ] + _small_set(data_root))
    assert "'mIoU':" in out


def test_mmsegmentation_own_tools_run_the_demo_config(trained, tmp_path):
    _, data_root, _ = trained
    work_dir = str(tmp_path / 'mmseg_work')
    log = run_tool([
        osp.join(MMSEG_TOOLS, 'train.py'), CONFIG, '--work-dir', work_dir,
        '--cfg-options'
    ] + _small_set(data_root))
    assert 'mIoU:' in log
    out = run_tool([
        osp.join(MMSEG_TOOLS, 'test.py'), CONFIG,
        osp.join(work_dir, 'iter_4.pth'), '--work-dir', work_dir,
        '--cfg-options'
    ] + _small_set(data_root))
    assert 'mIoU' in out
