"""The spike-masked-autoencoder configs build and take a pretraining step."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    glob.glob(osp.join(ROOT, 'configs/spike_mae/*.py')) +
    glob.glob(osp.join(ROOT, 'configs/demo/spike-mae*.py')))


def test_configs_are_found():
    assert {osp.basename(c)
            for c in CONFIGS} == {
                'spike-mae_e-spikeformer-83m_8xb256-200e_in1k.py',
                'spike-mae_e-spikeformer-171m_8xb256-200e_in1k.py',
                'spike-mae_e-spikeformer-tiny_shapes.py',
            }


@pytest.mark.parametrize('config', CONFIGS, ids=osp.basename)
def test_config_pretraining_step(config):
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(config)
    cfg.model.data_preprocessor = cfg.data_preprocessor
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
        model.init_weights()
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert model.mask_ratio == 0.5
    torch.manual_seed(0)
    data = dict(
        inputs=torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8),
        data_samples=None)
    decoder = model.neck.predict.weight.detach().clone()
    losses = model.train_step(data, optim_wrapper)
    assert torch.isfinite(losses['loss'])
    assert not torch.equal(model.neck.predict.weight, decoder)


def test_fine_tuning_config_loads_the_pretraining_checkpoint(tmp_path):
    from mmpretrain.registry import MODELS
    pretrain = Config.fromfile(
        osp.join(
            ROOT, 'configs/spike_mae/spike-mae_e-spikeformer-83m_8xb256-200e_'
            'in1k.py'))
    finetune = Config.fromfile(
        osp.join(
            ROOT, 'configs/e_spikeformer/e-spikeformer-83m_spike-mae-pre_'
            '8xb128-coslr-100e_in1k.py'))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        mae = MODELS.build(pretrain.model)
        checkpoint = str(tmp_path / 'epoch_200.pth')
        torch.save(dict(state_dict=mae.state_dict()), checkpoint)
        finetune.model.backbone.init_cfg.checkpoint = checkpoint
        classifier = MODELS.build(finetune.model)
    classifier.init_weights()
    loaded = classifier.backbone.state_dict()
    for key, value in mae.backbone.state_dict().items():
        assert torch.equal(loaded[key], value), key
