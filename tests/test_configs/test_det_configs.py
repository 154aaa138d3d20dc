"""Every detection config builds its model, runs a train step and a
predict step on MMDetection's demo inputs."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    glob.glob(osp.join(ROOT, 'configs/mask_rcnn/*.py')) +
    glob.glob(osp.join(ROOT, 'configs/cascade_rcnn/*.py')) +
    glob.glob(osp.join(ROOT, 'configs/retinanet/*.py')) +
    glob.glob(osp.join(ROOT, 'configs/fcos/*.py')) +
    glob.glob(osp.join(ROOT, 'configs/meta_spikeformer/*coco.py')) +
    glob.glob(osp.join(ROOT, 'configs/demo/*rcnn*.py')))


def test_configs_are_found():
    names = {osp.basename(c) for c in CONFIGS}
    assert names == {
        'mask-rcnn_e-spikeformer-l_spike-fpn_1x_coco.py',
        'mask-rcnn_e-spikeformer-m_spike-fpn_1x_coco.py',
        'cascade-mask-rcnn_e-spikeformer-l_spike-fpn_3x_coco.py',
        'retinanet_e-spikeformer-s_fpn_1x_coco.py',
        'fcos_e-spikeformer-s_fpn_1x_coco.py',
        'mask-rcnn_e-spikeformer-t_spike-fpn_shapes.py',
        'mask-rcnn_meta-spikeformer-15m_spike-fpn_1x_coco.py',
    }


def _build(config):
    from mmdet.registry import MODELS
    cfg = Config.fromfile(config)
    assert cfg.default_scope == 'mmdet'
    # ImageNet checkpoints are not part of the tests.
    cfg.model.backbone.pop('init_cfg', None)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
        model.init_weights()
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    return cfg, model, optim_wrapper


def _num_classes(model):
    head = getattr(model, 'bbox_head', None)
    if head is None:
        head = model.roi_head.bbox_head
        head = head[0] if isinstance(head, torch.nn.ModuleList) else head
    return head.num_classes


@pytest.mark.parametrize('config', CONFIGS, ids=osp.basename)
def test_config_train_and_predict_step(config):
    from mmdet.testing import demo_mm_inputs
    cfg, model, optim_wrapper = _build(config)
    with_mask = 'mask' in osp.basename(config)
    torch.manual_seed(0)
    data = demo_mm_inputs(
        batch_size=2,
        image_shapes=[(3, 128, 160), (3, 96, 128)],
        num_items=[3, 2],
        num_classes=_num_classes(model),
        with_mask=with_mask)
    before = {
        name: p.detach().clone()
        for name, p in model.named_parameters() if name.startswith('neck.')
    }
    with DefaultScope.overwrite_default_scope('mmdet'):
        losses = model.train_step(data, optim_wrapper)
        assert torch.isfinite(losses['loss'])
        # The loss reaches the backbone through the neck.
        assert any(not torch.equal(p, before[name])
                   for name, p in model.named_parameters() if name in before)
        model.eval()
        results = model.val_step(data)
    assert len(results) == 2
    for result in results:
        pred = result.pred_instances
        assert pred.bboxes.shape[1] == 4
        assert len(pred.scores) == len(pred.labels) == len(pred.bboxes)
        if with_mask:
            assert pred.masks.shape[1:] == result.ori_shape
