"""The HARDVS recipe config: its classifier, optimizer, pipeline, and the
spike counts of clips (T x D = 8 x 4) in the energy tool and the hook."""
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from hardvs_fixture import SAMPLES, write_hardvs
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT,
                  'configs/hardvs/e-spikeformer-l_3xb24-100e_hardvs-t8.py')


@pytest.fixture
def hardvs_root(tmp_path):
    return write_hardvs(str(tmp_path / 'hardvs'), SAMPLES)


def _model(cfg):
    from mmpretrain.registry import MODELS
    model_cfg = cfg.model.copy()
    model_cfg.data_preprocessor = cfg.data_preprocessor
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(model_cfg)
    model.init_weights()
    return model


def test_classifier_params_and_clip_forward():
    cfg = Config.fromfile(CONFIG)
    model = _model(cfg)
    assert type(model).__name__ == 'ImageClassifier'
    assert sum(p.numel() for p in model.parameters()) == 18740004
    assert sum(p.numel() for p in model.backbone.parameters()) == 18631704
    torch.manual_seed(0)
    clips = (torch.rand(2, 8, 2, 224, 224) < 0.2).float()
    model.eval()
    with torch.no_grad():
        logits = model(clips, mode='tensor')
    assert logits.shape == (2, 300)
    assert torch.isfinite(logits).all()


def test_recipe_numbers_and_no_decay_on_1d_params():
    cfg = Config.fromfile(CONFIG)
    assert cfg.train_dataloader.batch_size == 24
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(1.125e-5)
    assert cfg.param_scheduler[1].eta_min == 1e-6
    assert cfg.train_cfg.max_epochs == 100
    ema, = [h for h in cfg.custom_hooks if h.type == 'EMAHook']
    assert ema.momentum == pytest.approx(1 - 0.999)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'float16'
    # AmpOptimWrapper needs a GPU: the parameter groups, built on the CPU
    # by the same constructor under a plain OptimWrapper
    model = _model(cfg)
    plain = cfg.optim_wrapper.copy()
    plain.pop('dtype')
    plain.type = 'OptimWrapper'
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        optim_wrapper = build_optim_wrapper(model, plain)
    assert optim_wrapper.clip_grad_kwargs == dict(max_norm=1.0)
    decay = {}
    for group in optim_wrapper.optimizer.param_groups:
        for p in group['params']:
            decay[id(p)] = group['weight_decay']
    names = dict(model.named_parameters())
    layer_scales = [n for n in names if 'layer_scale' in n]
    assert len(layer_scales) == 3 * 8  # the 8 transformer blocks
    for name, p in names.items():
        assert decay[id(p)] == (0.0 if p.ndim == 1 else 0.01), name


def test_pipeline_on_the_official_layout(hardvs_root, mmpretrain_scope):
    cfg = Config.fromfile(CONFIG)
    from mmpretrain.registry import DATASETS
    for loader, labels in ((cfg.train_dataloader, [0, 0, 299]),
                           (cfg.test_dataloader, [1])):
        loader.dataset.data_root = hardvs_root
        dataset = DATASETS.build(loader.dataset)
        assert [
            dataset.get_data_info(i)['gt_label'] for i in range(len(dataset))
        ] == labels
        np.random.seed(0)
        data = dataset[0]
        assert data['inputs'].shape == (8, 2, 224, 224)
        assert data['inputs'].dtype == torch.float32
        assert set(data['inputs'].unique().tolist()) == {0.0, 1.0}
        assert data['data_samples'].gt_label.tolist() == [labels[0]]
    # test clips are repeatable
    test_pipeline = Compose(cfg.test_pipeline)
    info = dataset.get_data_info(0)
    assert torch.equal(
        test_pipeline(dict(info))['inputs'],
        test_pipeline(dict(info))['inputs'])


def test_spike_energy_tool_reports_8_x_4(hardvs_root, tmp_path):
    out_dir = str(tmp_path / 'energy')
    result = subprocess.run(
        [
            sys.executable,
            osp.join(ROOT, 'tools/analysis_tools/spike_energy.py'),
            CONFIG,
            '--num-images',
            '1',
            '--batch-size',
            '1',
            '--out-dir',
            out_dir,
            '--cfg-options',
            f'test_dataloader.dataset.data_root={hardvs_root}',
            # 64 px crops keep the L model's count fast; T and D are unchanged
            'test_dataloader.dataset.pipeline.1.scale=64',
            'test_dataloader.dataset.pipeline.1.crop_size=64'
        ],
        cwd=ROOT,
        capture_output=True,
        text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'images: 1, T x D = 8 x 4' in result.stdout
    with open(osp.join(out_dir, 'spike_energy.json')) as f:
        summary = json.load(f)
    assert summary['T'] == [8] and summary['D'] == [4]


def test_firing_rate_hook_counts_clips_as_8_x_4(hardvs_root, tmp_path):
    """FiringRateHook in a test loop on B x T x C x H x W batches: a small
    model (arch 't') on 64 px crops of the fixture's clips."""
    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone.arch = 't'
    cfg.model.head.in_channels = 128
    pipeline = cfg.test_pipeline
    pipeline[1].update(scale=64, crop_size=64)
    cfg.test_dataloader = dict(
        batch_size=2,
        num_workers=0,
        persistent_workers=False,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(
            type='sdt3_mm.HARDVS',
            data_root=hardvs_root,
            split='train',
            test_mode=True,
            pipeline=pipeline))
    cfg.custom_hooks = [dict(type='sdt3_mm.FiringRateHook')]
    cfg.work_dir = str(tmp_path / 'work')
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper',
                'param_scheduler', 'val_dataloader', 'val_cfg',
                'val_evaluator', 'auto_scale_lr'):
        cfg.pop(key)
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    assert 0 < metrics['spike/firing_rate'] < 1
    with open(osp.join(runner.work_dir, 'firing_rates', 'test.json')) as f:
        dumped = json.load(f)
    assert dumped['num_images'] == 3  # clips, not frames
    assert dumped['T'] == [8] and dumped['D'] == [4]
