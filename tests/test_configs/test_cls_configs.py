"""Every classification config builds its model and runs a train step."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    glob.glob(osp.join(ROOT, 'configs/e_spikeformer/*.py')) +
    glob.glob(osp.join(ROOT, 'configs/meta_spikeformer/*in1k.py')) +
    glob.glob(osp.join(ROOT, 'configs/demo/*cls*.py')))


def test_configs_are_found():
    names = {osp.basename(c) for c in CONFIGS}
    assert 'e-spikeformer-s_8xb256-lamb-200e_in1k.py' in names
    assert 'e-spikeformer-t_shapes-cls.py' in names
    assert 'meta-spikeformer-55m-t1_8xb256-lamb-200e_in1k.py' in names
    assert 'meta-spikeformer_t4_shapes-cls.py' in names
    assert len(names) == 11


@pytest.mark.parametrize('config', CONFIGS, ids=osp.basename)
def test_config_train_step(config):
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample
    cfg = Config.fromfile(config)
    assert cfg.default_scope == 'mmpretrain'
    model_cfg = cfg.model
    # Pretraining checkpoints are not part of the tests.
    model_cfg.backbone.pop('init_cfg', None)
    model_cfg.data_preprocessor = cfg.get('data_preprocessor')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(model_cfg)
        model.init_weights()
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    num_classes = model.head.num_classes
    torch.manual_seed(0)
    data = dict(
        inputs=[
            torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
            for _ in range(2)
        ],
        data_samples=[
            DataSample().set_gt_label(i % num_classes) for i in range(2)
        ])
    before = model.head.fc.weight.detach().clone()
    losses = model.train_step(data, optim_wrapper)
    assert torch.isfinite(losses['loss'])
    assert not torch.equal(model.head.fc.weight, before)
