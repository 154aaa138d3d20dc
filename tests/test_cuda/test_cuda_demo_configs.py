"""Two training iterations of each demo config on CUDA, through
``tools/train.py`` as a user runs it (mmengine's Runner puts the model on
the GPU when there is one), on a few generated images."""
import os.path as osp
import re
import subprocess

import pytest
import torch
from cuda_tier import CUDA, ROOT
from demo_runs import (IN_PROCESS, coco_evaluator_options, small_set_options,
                       train_command)

pytestmark = pytest.mark.cuda

DEMO = osp.join(ROOT, 'configs', 'demo')
# A log line of iteration 2 of 2 with the CUDA memory the run's tensors
# took at most, in MB (mmengine's LogProcessor writes it wherever CUDA is
# available; above 0 only when the model was on the GPU).
SECOND_ITERATION_ON_CUDA = re.compile(
    r'(Epoch\(train\) *\[1\]|Iter\(train\)) *\[2/2\].* memory: [1-9]\d*')
# Four images in batches of two: one epoch is two iterations.
SMALL = dict(num_train=4, num_val=2, batch_size=2, **IN_PROCESS)
BY_EPOCH = [
    'train_cfg.max_epochs=1', 'default_hooks.checkpoint.interval=1',
    'default_hooks.logger.interval=1'
]
BY_ITER = [
    'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
    'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1'
]


def mmcv_cuda_ops_missing():
    """Why mmcv's compiled ops cannot run on CUDA here (the detector's
    RoIAlign and NMS), or None when they can.

    An mmcv built without its ops (``MMCV_WITH_OPS=0``, as the wheel folder
    of tools/gpu has it) has no ``mmcv._ext``; one built without CUDA has
    them for the CPU only.
    """
    try:
        from mmcv.ops import nms, roi_align
    except ImportError as error:
        return f'mmcv has no compiled ops ({error})'
    boxes = torch.tensor([[0., 0., 4., 4.], [1., 1., 5., 5.]], device=CUDA)
    try:
        nms(boxes, torch.tensor([0.9, 0.8], device=CUDA), 0.5)
        roi_align(
            torch.ones(1, 1, 8, 8, device=CUDA),
            torch.tensor([[0., 0., 0., 4., 4.]], device=CUDA), (2, 2))
    except RuntimeError as error:
        return f'mmcv\'s ops do not run on CUDA ({error})'
    return None


def _train_twice(config, tmp_path, options):
    """Run two training iterations of ``config`` and return the log."""
    command = train_command(
        osp.join(DEMO, config), str(tmp_path / 'work'), options)
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert SECOND_ITERATION_ON_CUDA.search(log), log[-4000:]
    return log


@pytest.mark.parametrize('config', [
    'e-spikeformer-t_shapes-cls.py', 'meta-spikeformer_t4_shapes-cls.py',
    'e-spikeformer-t_shapes-events.py'
])
def test_classifier_demo_trains_on_cuda(config, tmp_path):
    pytest.importorskip('mmpretrain', reason='mmpretrain is not installed')
    options = small_set_options(str(tmp_path / 'data'), **SMALL)
    _train_twice(config, tmp_path, options + BY_EPOCH)


def test_spike_mae_demo_trains_on_cuda(tmp_path):
    pytest.importorskip('mmpretrain', reason='mmpretrain is not installed')
    options = small_set_options(
        str(tmp_path / 'data'), loaders=('train_dataloader', ), **SMALL)
    _train_twice('spike-mae_e-spikeformer-tiny_shapes.py', tmp_path,
                 options + BY_ITER)


def test_segmentation_demo_trains_on_cuda(tmp_path):
    pytest.importorskip(
        'mmseg', reason='mmsegmentation does not import (not installed?)')
    options = small_set_options(str(tmp_path / 'data'), **SMALL)
    _train_twice('fpn_e-spikeformer-t_spike-fpn_shapes-seg.py', tmp_path,
                 options + BY_ITER)


def test_detection_demo_trains_on_cuda(tmp_path):
    pytest.importorskip('mmdet', reason='mmdet does not import')
    missing = mmcv_cuda_ops_missing()
    if missing:
        pytest.skip(f'{missing}: the Mask R-CNN demo needs mmcv built with '
                    f'its CUDA ops')
    data_root = str(tmp_path / 'data')
    # data_root as the config writes it (MMDetection's trailing '/').
    options = small_set_options(f'{data_root}/', **SMALL)
    options += coco_evaluator_options(data_root)
    _train_twice('mask-rcnn_e-spikeformer-t_spike-fpn_shapes.py', tmp_path,
                 options + BY_EPOCH)
