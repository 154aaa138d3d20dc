"""Every config loads runner checkpoints weights-only: it names
sdt3_mm.SafeCheckpointLoadingHook, so that MMPretrain's, MMDetection's and
MMSegmentation's own tools (not only ours) resume and test with it."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import HOOKS, DefaultScope

from sdt3_mm.engine import SafeCheckpointLoadingHook

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    c for c in glob.glob(osp.join(ROOT, 'configs/**/*.py'), recursive=True)
    if '_base_' not in c.split(osp.sep))


def test_configs_are_found():
    assert len(CONFIGS) == 26


@pytest.mark.parametrize(
    'config', CONFIGS, ids=lambda c: osp.relpath(c, ROOT + '/configs'))
def test_config_switches_on_safe_checkpoint_loading(config):
    cfg = Config.fromfile(config)
    hooks = cfg.get('custom_hooks') or []
    safe = [
        h for h in hooks if h['type'] == 'sdt3_mm.SafeCheckpointLoadingHook'
    ]
    assert len(safe) == 1, hooks
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        assert isinstance(HOOKS.build(safe[0]), SafeCheckpointLoadingHook)
