import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from sdt3_mm.engine import BF16OptimWrapper
from sdt3_mm.models import ESpikeFormer
from sdt3_mm.utils import use_mixed_precision


def test_builds_from_another_scope_and_trains_in_bf16():
    torch.manual_seed(0)
    model = ESpikeFormer('t')
    before = [p.detach().clone() for p in model.parameters()]
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        wrapper = build_optim_wrapper(
            model,
            dict(
                type='sdt3_mm.BF16OptimWrapper',
                optimizer=dict(type='SGD', lr=0.1)))
    assert isinstance(wrapper, BF16OptimWrapper)
    with wrapper.optim_context(model):
        tap, = model(torch.randn(2, 3, 32, 32))
    assert tap.dtype == torch.bfloat16
    wrapper.update_params(tap.float().square().mean())
    params = list(model.parameters())
    assert all(p.dtype == torch.float32 for p in params)
    changed = [not torch.equal(a, p) for a, p in zip(before, params)]
    assert sum(changed) > len(params) // 2


def _cfg(**wrapper):
    return Config(
        dict(
            optim_wrapper=dict(
                type='OptimWrapper', optimizer=dict(type='SGD'), **wrapper)))


def test_use_mixed_precision_picks_the_wrapper():
    cfg = _cfg(loss_scale=512.)
    use_mixed_precision(cfg, 'bf16')
    assert cfg.optim_wrapper.type == 'sdt3_mm.BF16OptimWrapper'
    assert 'loss_scale' not in cfg.optim_wrapper
    cfg = _cfg()
    if torch.cuda.is_available():
        use_mixed_precision(cfg)
        assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
        assert cfg.optim_wrapper.loss_scale == 'dynamic'
    else:
        use_mixed_precision(cfg)
        assert cfg.optim_wrapper.type == 'sdt3_mm.BF16OptimWrapper'
        with pytest.raises(RuntimeError, match='fp16 mixed precision needs'):
            use_mixed_precision(_cfg(), 'fp16')
    with pytest.raises(ValueError, match='must be fp16 or bf16'):
        use_mixed_precision(_cfg(), 'int8')
