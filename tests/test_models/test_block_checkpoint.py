import gc
import weakref

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from sdt3_mm.models import ESpikeFormer, MetaSpikeFormer


def _train_step(model, x):
    taps = model(x)
    sum(tap.square().mean() for tap in taps).backward()
    return taps


# Larger BN weights make the SFA neurons fire at several levels (the
# LIF neurons of Meta-SpikeFormer fire with the default ones).
@pytest.mark.parametrize('build,bn_weights', [
    (lambda cp: ESpikeFormer('t', out_indices=(2, 4), with_cp=cp), (0.5, 2)),
    (lambda cp: ESpikeFormer(
        dict(family='large', embed_dims=[32, 64, 128], depth=2, rep_conv=True),
        out_indices=(1, 3),
        with_cp=cp), (0.5, 2)),
    (lambda cp: MetaSpikeFormer(
        dict(family='meta', embed_dims=[32, 64, 96, 128]), T=2, with_cp=cp),
     None),
])
def test_checkpointing_changes_nothing_but_memory(build, bn_weights):
    torch.manual_seed(0)
    plain = build(False).train()
    for module in plain.modules():
        if isinstance(module, _BatchNorm) and bn_weights:
            nn.init.uniform_(module.weight, *bn_weights)
    checkpointed = build(True).train()
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 64)
    for a, b in zip(_train_step(plain, x), _train_step(checkpointed, x)):
        assert torch.equal(a, b)
    grads = [(p.grad, q.grad)
             for p, q in zip(plain.parameters(), checkpointed.parameters())
             if p.grad is not None]
    assert len(grads) > 30
    assert all(torch.equal(a, b) for a, b in grads)
    # The rerun in backward leaves BN running statistics as the forward
    # set them: updated once, not twice.
    plain_state, cp_state = plain.state_dict(), checkpointed.state_dict()
    assert all(torch.equal(plain_state[k], cp_state[k]) for k in plain_state)


def test_checkpointing_frees_the_activations_inside_blocks():

    def activation_kept(with_cp):
        model = ESpikeFormer('t', with_cp=with_cp).train()
        conv = model.stages[2][0].conv1.conv
        outputs = []
        conv.register_forward_hook(
            lambda module, args, out: outputs.append(weakref.ref(out)))
        taps = model(torch.randn(2, 3, 64, 64))
        gc.collect()
        kept = outputs[0]() is not None
        taps[0].sum().backward()
        return kept

    # The conv's output is the input its BN saves for backward.
    assert activation_kept(False) and not activation_kept(True)
