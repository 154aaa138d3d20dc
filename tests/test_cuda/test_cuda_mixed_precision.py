"""Mixed-precision training steps on CUDA, per family, with the one-byte
spike codes in use: fp16 through mmengine's ``AmpOptimWrapper`` (autocast
and dynamic loss scaling, what ``tools/train.py --amp`` picks on a GPU) and
bf16 through :class:`sdt3_mm.engine.BF16OptimWrapper`."""
import math

import pytest
import torch
from cuda_tier import (CUDA, SpikeCodeRecord, classification_batch,
                       demo_classifier)
from mmengine.optim import AmpOptimWrapper

from sdt3_mm.engine import BF16OptimWrapper

pytestmark = pytest.mark.cuda

FAMILIES = ['e-spikeformer', 'meta-spikeformer']
# Dynamic loss scaling starts at 2**16 and halves the scale on every step
# whose scaled gradients overflow fp16, skipping that step; these many
# steps leave room to find a scale and take real steps.
MAX_FP16_STEPS = 24


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def _changed(before, model):
    """How many parameters the steps moved, and how many there are."""
    params = list(model.parameters())
    return sum(not torch.equal(a, p)
               for a, p in zip(before, params)), len(params)


def _step(model, wrapper, inputs, samples):
    """One training step through ``wrapper``: the loss (a float) and the
    record of the neurons' codes and spike dtypes."""
    with SpikeCodeRecord(model) as record:
        with wrapper.optim_context(model):
            losses = model(inputs, samples, mode='loss')
        loss, _ = model.parse_losses(losses)
        wrapper.update_params(loss)
    return float(loss), record


def _assert_autocast(record, dtype):
    """Most neurons fired on ``dtype`` membrane potentials (autocast ran
    the layers feeding them in it); the others on fp32 (what autocast
    keeps in fp32, such as the pooled features of the head)."""
    dtypes = record.spike_dtypes()
    assert set(dtypes) <= {dtype, torch.float32}, dtypes
    assert dtypes[dtype] > dtypes[torch.float32], dtypes


@pytest.mark.parametrize('family', FAMILIES)
def test_fp16_amp_train_steps_with_spike_codes(family):
    model = demo_classifier(family).to(CUDA)
    wrapper = AmpOptimWrapper(
        loss_scale='dynamic',
        optimizer=torch.optim.SGD(model.parameters(), lr=0.01))
    inputs, samples = classification_batch()
    before = _params(model)
    taken = 0
    for _ in range(MAX_FP16_STEPS):
        scale = wrapper.loss_scaler.get_scale()
        loss, record = _step(model, wrapper, inputs, samples)
        assert math.isfinite(loss)
        _assert_autocast(record, torch.float16)
        record.assert_codes_made(CUDA)
        # A step was taken when the scaler kept its scale (no overflow).
        if wrapper.loss_scaler.get_scale() >= scale:
            taken += 1
            if taken == 2:
                break
    torch.cuda.synchronize()
    assert taken == 2, (f'fewer than two fp16 steps in {MAX_FP16_STEPS}: '
                        'the others overflowed')
    changed, total = _changed(before, model)
    assert changed > total // 2
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize('family', FAMILIES)
def test_bf16_train_step_with_spike_codes(family):
    model = demo_classifier(family).to(CUDA)
    wrapper = BF16OptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.01))
    inputs, samples = classification_batch()
    before = _params(model)
    loss, record = _step(model, wrapper, inputs, samples)
    torch.cuda.synchronize()
    assert math.isfinite(loss)
    _assert_autocast(record, torch.bfloat16)
    record.assert_codes_made(CUDA)
    changed, total = _changed(before, model)
    assert changed > total // 2
    assert all(p.dtype == torch.float32 for p in model.parameters())
