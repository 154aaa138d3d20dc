import copy
import gc
import weakref

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from sdt3_mm.models import ESpikeFormer, SFANeuron
from sdt3_mm.models.utils.spike_storage import compact_spike_storage


def _spikes_kept_by_graph(compact):
    """Whether the autograd graph of conv(neuron(x)) holds the float
    spikes after the forward."""
    torch.manual_seed(0)
    neuron, conv = SFANeuron(), nn.Conv2d(4, 4, 3, padding=1)
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    with compact_spike_storage() if compact else torch.enable_grad():
        spikes = neuron(x * 3)
        out = conv(spikes)
    ref = weakref.ref(spikes)
    del spikes
    gc.collect()
    kept = ref() is not None
    out.square().sum().backward()
    return kept, x.grad


def test_layers_reading_spikes_save_the_byte_code_instead():
    kept, grad = _spikes_kept_by_graph(compact=False)
    kept_compact, grad_compact = _spikes_kept_by_graph(compact=True)
    assert kept and not kept_compact
    assert torch.equal(grad, grad_compact)


def _plain_taps(model, x):
    """The backbone's forward without compact spike storage."""
    taps = []
    for downsample, stage in zip(model.downsample_layers, model.stages):
        x = stage(downsample(x))
        taps.append(x)
    return taps


@pytest.mark.parametrize('arch', [
    't',
    dict(family='large', embed_dims=[32, 64, 128], depth=2, rep_conv=True)
])
def test_backbone_gradients_are_bit_identical(arch):
    torch.manual_seed(0)
    model = ESpikeFormer(arch=arch, out_indices=(0, 1, 2, 3)).train()
    # Larger BN weights make every neuron fire at several levels.
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            nn.init.uniform_(module.weight, 0.5, 2)
    plain = copy.deepcopy(model)
    x = torch.randn(2, 3, 64, 96)
    taps = model(x)
    sum(tap.square().mean() for tap in taps).backward()
    sum(tap.square().mean() for tap in _plain_taps(plain, x)[:4]).backward()
    grads = [(p.grad, q.grad)
             for p, q in zip(model.parameters(), plain.parameters())
             if q.grad is not None]
    assert len(grads) > 50
    assert all(torch.equal(a, b) for a, b in grads)


def test_spike_fpn_gradients_are_bit_identical():
    from mmdet.models.necks import FPN

    from sdt3_mm.models import SpikeFPN
    torch.manual_seed(0)
    neck = SpikeFPN([16, 32, 32], 16, 4, in_strides=[4, 8, 8]).train()
    plain = copy.deepcopy(neck)
    inputs = [
        torch.randn(2, c, s, s, requires_grad=True)
        for c, s in ((16, 16), (32, 8), (32, 8))
    ]
    sum(out.square().mean() for out in neck(inputs)).backward()
    grads = [x.grad.clone() for x in inputs]
    for x in inputs:
        x.grad = None
    # FPN.forward runs the same layers without compact spike storage.
    sum(out.square().mean() for out in FPN.forward(plain, inputs)).backward()
    assert all(torch.equal(g, x.grad) for g, x in zip(grads, inputs))
    assert all(
        torch.equal(p.grad, q.grad)
        for p, q in zip(neck.parameters(), plain.parameters()))
