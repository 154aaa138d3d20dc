"""tools/train.py and tools/test.py, and MMDetection's own train.py and
test.py, on the demo Mask R-CNN config with a small generated COCO set."""
import os.path as osp

import mmdet
import pytest
from demo_runs import IN_PROCESS, coco_evaluator_options, small_set_options
from tool_runner import ROOT, run_tool

CONFIG = osp.join(ROOT, 'configs', 'demo',
                  'mask-rcnn_e-spikeformer-t_spike-fpn_shapes.py')
MMDET_TOOLS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools')


def _small_set(data_root):
    """The demo set cut to 16 training and 8 held-out images in batches of
    4, scored on its own annotations, and one epoch of training."""
    # data_root as the config writes it (MMDetection's trailing '/').
    data = small_set_options(
        f'{data_root}/', num_train=16, num_val=8, batch_size=4, **IN_PROCESS)
    schedule = [
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        'default_hooks.checkpoint.interval=1'
    ]
    return data + coco_evaluator_options(data_root) + schedule


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('det_tools')
    work_dir = str(tmp / 'work')
    data_root = str(tmp / 'shapes_det')
    log = run_tool([
        osp.join(ROOT, 'tools/train.py'), CONFIG, '--work-dir', work_dir,
        '--cfg-options'
    ] + _small_set(data_root), ROOT)
    return work_dir, data_root, log


def test_train_evaluates_boxes_and_masks_with_coco_metric(trained):
    work_dir, data_root, log = trained
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))
    assert osp.isfile(
        osp.join(data_root, 'annotations', 'instances_train.json'))
    # pycocotools' summary and mmdet's metric keys, for both tasks.
    assert 'Average Precision  (AP) @[ IoU=0.50:0.95' in log
    assert 'coco/bbox_mAP' in log and 'coco/segm_mAP' in log


def test_test_tool_on_the_checkpoint(trained, tmp_path):
    work_dir, data_root, _ = trained
    out = run_tool([
        osp.join(ROOT, 'tools/test.py'), CONFIG,
        osp.join(work_dir, 'epoch_1.pth'), '--work-dir',
        str(tmp_path), '--cfg-options'
    ] + _small_set(data_root), ROOT)
    assert "'coco/bbox_mAP':" in out and "'coco/segm_mAP':" in out


def test_mmdetection_own_tools_run_the_demo_config(trained, tmp_path):
    _, data_root, _ = trained
    work_dir = str(tmp_path / 'mmdet_work')
    log = run_tool([
        osp.join(MMDET_TOOLS, 'train.py'), CONFIG, '--work-dir', work_dir,
        '--cfg-options'
    ] + _small_set(data_root), ROOT)
    assert 'coco/bbox_mAP' in log
    out = run_tool([
        osp.join(MMDET_TOOLS, 'test.py'), CONFIG,
        osp.join(work_dir, 'epoch_1.pth'), '--work-dir', work_dir,
        '--cfg-options'
    ] + _small_set(data_root), ROOT)
    assert 'coco/segm_mAP' in out


STOCK_RETINANET = """
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
# The only model change: our backbone, and the FPN's inputs.
model = dict(
    backbone=dict(_delete_=True, type='sdt3_mm.ESpikeFormer', arch='t',
                  out_indices=(2, 4)),
    neck=dict(in_channels=[48, 128], start_level=0),
    bbox_head=dict(num_classes=6))
# Data: the generated shapes set, small and at its own size.
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor')),
]
dataset = dict(_delete_=True, type='sdt3_mm.ShapesDetection',
               data_root='{data_root}/', num_train=16, num_val=8,
               pipeline=pipeline)
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        dataset=dict(dataset, split='train'))
val_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                      dataset=dict(dataset, split='val', test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file='{data_root}/annotations/instances_val.json',
                     metric='bbox')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=1)
# Runner checkpoints (test.py below) load weights-only.
custom_hooks = [dict(type='sdt3_mm.SafeCheckpointLoadingHook')]
"""


def test_mmdetection_own_tools_on_a_stock_config_with_our_backbone(
        trained, tmp_path):
    _, data_root, _ = trained
    config = tmp_path / 'retinanet_e-spikeformer-t_shapes.py'
    config.write_text(STOCK_RETINANET.format(data_root=data_root))
    work_dir = str(tmp_path / 'work')
    log = run_tool([
        osp.join(MMDET_TOOLS, 'train.py'),
        str(config), '--work-dir', work_dir
    ], ROOT)
    # After four iterations RetinaNet's scores are still below its 0.05
    # threshold, so CocoMetric has nothing to score, but it runs.
    assert 'Evaluating bbox' in log
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))
    out = run_tool([
        osp.join(MMDET_TOOLS, 'test.py'),
        str(config),
        osp.join(work_dir, 'epoch_1.pth'), '--work-dir', work_dir
    ], ROOT)
    assert 'Evaluating bbox' in out
