"""Every config carries the reliability hooks and loop, so that
MMPretrain's, MMDetection's and MMSegmentation's own tools (not only ours)
load runner checkpoints weights-only and strictly, stop at non-finite
values, write checkpoints atomically and resume epoch runs exactly from
iteration checkpoints."""
import glob
import inspect
import os.path as osp

import pytest
import yaml
from mmengine.config import Config
from mmengine.registry import HOOKS, LOOPS, DefaultScope

from sdt3_mm.model_zoo import METAFILES
from sdt3_mm.reliability import (AtomicCheckpointHook, NonFiniteCheckHook,
                                 SafeCheckpointLoadingHook, StrictLoadingHook)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    c for c in glob.glob(osp.join(ROOT, 'configs/**/*.py'), recursive=True)
    if '_base_' not in c.split(osp.sep))
CUSTOM_HOOKS = {
    'sdt3_mm.SafeCheckpointLoadingHook': SafeCheckpointLoadingHook,
    'sdt3_mm.StrictLoadingHook': StrictLoadingHook,
    'sdt3_mm.NonFiniteCheckHook': NonFiniteCheckHook,
}


def _configs_named_in(metafiles):
    """The config files the models of ``metafiles`` (paths relative to the
    repository root, as their ``Config`` entries are) name."""
    configs = set()
    for metafile in metafiles:
        with open(osp.join(ROOT, metafile)) as f:
            models = yaml.safe_load(f)['Models']
        configs.update(osp.join(ROOT, model['Config']) for model in models)
    return configs


def test_every_config_with_a_model_is_checked():
    """CONFIGS, every file of configs/ outside _base_, each define a model
    (what a tool trains or tests with); a _base_ file that defines one is a
    fragment some config inherits, not a config the checks below miss; and
    CONFIGS hold every config the model zoo names."""
    files = glob.glob(osp.join(ROOT, 'configs/**/*.py'), recursive=True)
    with_model = {c for c in files if 'model' in Config.fromfile(c)}
    assert set(CONFIGS) <= with_model
    texts = [open(c).read() for c in CONFIGS]
    for base in with_model - set(CONFIGS):
        name = osp.splitext(osp.basename(base))[0]
        assert any(f'{name}.py' in text for text in texts), \
            f'{base} defines a model but no config inherits it'
    named = _configs_named_in(
        glob.glob(osp.join(ROOT, 'configs', '*', 'metafile.yml')))
    assert named and named <= set(CONFIGS)


@pytest.mark.parametrize(
    'config', CONFIGS, ids=lambda c: osp.relpath(c, ROOT + '/configs'))
def test_config_uses_the_reliability_hooks_and_loop(config):
    cfg = Config.fromfile(config)
    # the libraries' own tools import sdt3_mm from the config
    assert 'sdt3_mm' in cfg.custom_imports['imports']
    hooks = cfg.get('custom_hooks') or []
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        for name, cls in CUSTOM_HOOKS.items():
            found = [h for h in hooks if h['type'] == name]
            assert len(found) == 1, (name, hooks)
            assert isinstance(HOOKS.build(found[0]), cls)
        checkpoint = dict(cfg.default_hooks.checkpoint)
        assert checkpoint['type'] == 'sdt3_mm.AtomicCheckpointHook'
        assert isinstance(HOOKS.build(checkpoint), AtomicCheckpointHook)
        loop = cfg.train_cfg
        if loop.get('type') == 'IterBasedTrainLoop':
            return
        assert loop.get('by_epoch', True)
        assert loop['type'] == 'sdt3_mm.ResumableEpochBasedTrainLoop'
        assert LOOPS.get(loop['type']).__name__ == loop['type'][8:]


MMPRETRAIN_CONFIGS = [
    c for c in CONFIGS if Config.fromfile(c).default_scope == 'mmpretrain'
]


def test_mmpretrain_configs_are_found():
    """Every config runs in one of the three libraries' scopes, so none
    escapes the MMPretrain selection by a misspelt scope, and the model
    zoo's classifiers (the metafiles MMPretrain's hub registers) are among
    the MMPretrain configs."""
    scopes = {c: Config.fromfile(c).default_scope for c in CONFIGS}
    assert set(scopes.values()) <= {'mmpretrain', 'mmdet', 'mmseg'}, scopes
    classifiers = _configs_named_in(METAFILES)
    assert classifiers and classifiers <= set(MMPRETRAIN_CONFIGS)


@pytest.mark.parametrize(
    'config',
    MMPRETRAIN_CONFIGS,
    ids=lambda c: osp.relpath(c, ROOT + '/configs'))
def test_mmpretrain_browse_dataset_takes_the_visualizer(config):
    """MMPretrain's tools/visualization/browse_dataset.py calls
    ``UniversalVisualizer(**visualizer_without_type, fig_show_cfg=...,
    fig_save_cfg=...)``; before, the ``_scope_`` key mmengine adds to an
    ``mmpretrain::`` base's dicts made that a TypeError."""
    from mmpretrain.visualization import UniversalVisualizer
    kwargs = dict(Config.fromfile(config).visualizer)
    assert kwargs.pop('type') == 'UniversalVisualizer'
    inspect.signature(UniversalVisualizer.__init__).bind(
        None, **kwargs, fig_show_cfg={}, fig_save_cfg={})
