"""Layers reading spikes keep the neuron's one-byte code for backward, and
stay ordinary autograd citizens: saved-tensor hooks, outer checkpointing
and in-place detection work around and inside them."""
import copy
import gc
import weakref

import pytest
import torch
import torch.utils.checkpoint as cp
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from sdt3_mm.models import ESpikeFormer, MetaSpikeFormer, SFANeuron
from sdt3_mm.models.layers.spike_code_ops import SpikeConv2d
from sdt3_mm.models.layers.blocks import SpikeConvBN
from sdt3_mm.models.neurons.spiking_neuron import (SpikingNeuron, reshape_spikes,
                                                 spike_code_of)

LARGE = dict(family='large', embed_dims=[32, 64, 128], depth=2, rep_conv=True)


def _spikes_kept_by_graph(neuron_training):
    torch.manual_seed(0)
    layer = SpikeConvBN(SpikeConv2d(4, 4, 3, padding=1), neuron_cfg=None)
    neuron = SFANeuron().train(neuron_training)
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    spikes = neuron(x * 3)
    out = layer(spikes)
    ref = weakref.ref(spikes)
    del spikes
    gc.collect()
    kept = ref() is not None
    out.square().sum().backward()
    return kept, x.grad, layer.conv.weight.grad


def test_conv_keeps_the_code_instead_of_the_spikes():
    kept, grad, weight_grad = _spikes_kept_by_graph(neuron_training=False)
    kept_code, grad_code, weight_grad_code = _spikes_kept_by_graph(True)
    assert kept and not kept_code
    assert torch.equal(grad, grad_code)
    assert torch.equal(weight_grad, weight_grad_code)


def _firing_model(build):
    torch.manual_seed(0)
    model = build().train()
    if isinstance(model, MetaSpikeFormer):
        # Binary LIF spikes fire with the default init; larger BN weights
        # leave some LIF layers silent and their BN gradients infinite.
        return model
    # Larger BN weights make every neuron fire at several levels.
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            nn.init.uniform_(module.weight, 0.5, 2)
    return model


def _plain(model):
    """The model with its neurons in evaluation mode: no spike codes, the
    plain autograd graph; BNs still use batch statistics."""
    plain = copy.deepcopy(model)
    for module in plain.modules():
        if isinstance(module, SpikingNeuron):
            module.eval()
    return plain


def _step(model, x):
    x = x.clone().requires_grad_()
    taps = model(x)
    sum(tap.square().mean() for tap in taps).backward()
    return [x.grad] + [p.grad for p in model.parameters()]


BUILDS = {
    'base':
    lambda: ESpikeFormer(arch='t', out_indices=(0, 1, 2, 3, 4)),
    'large':
    lambda: ESpikeFormer(arch=LARGE, out_indices=(0, 1, 2, 3)),
    'meta':
    lambda: MetaSpikeFormer(
        arch=dict(family='meta', embed_dims=[16, 32, 64, 64]),
        T=2,
        out_indices=(0, 1, 2)),
}


@pytest.mark.parametrize('family', sorted(BUILDS))
def test_gradients_equal_the_plain_graph(family):
    model = _firing_model(BUILDS[family])
    x = torch.randn(2, 3, 64, 48) * 4
    grads, plain_grads = _step(model, x), _step(_plain(model), x)
    pairs = [(a, b) for a, b in zip(grads, plain_grads) if b is not None]
    assert len(pairs) > 40
    for a, b in pairs:
        assert torch.isfinite(b).all()
        assert (a - b).abs().max() <= 1e-5 * b.abs().max() + 1e-6


def test_codes_go_through_saved_tensor_hooks():
    """save_on_cpu (or any outer pack hook) receives what the backbone
    saves, the codes included, and backward still gives the same result."""
    model = _firing_model(BUILDS['base'])
    x = torch.randn(2, 3, 64, 48)
    packed = []

    def pack(tensor):
        packed.append(tensor.dtype)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        taps = model(x)
    assert packed.count(torch.uint8) > 50
    sum(tap.square().mean() for tap in taps).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    with torch.autograd.graph.save_on_cpu():
        taps = model(x)
    sum(tap.square().mean() for tap in taps).backward()
    assert all(
        torch.equal(g, p.grad) for g, p in zip(grads, model.parameters()))


def test_outer_non_reentrant_checkpoint_recomputes():
    model = _firing_model(BUILDS['large'])
    x = torch.randn(2, 3, 64, 48)
    calls = []
    model.stages[3][0].register_forward_hook(lambda *args: calls.append(1))
    expected = _step(copy.deepcopy(model), x)
    calls.clear()
    x = x.clone().requires_grad_()
    taps = cp.checkpoint(model, x, use_reentrant=False)
    assert len(calls) == 1
    sum(tap.square().mean() for tap in taps).backward()
    assert len(calls) == 2  # the forward ran again in backward
    grads = [x.grad] + [p.grad for p in model.parameters()]
    for a, b in zip(grads, expected):
        if b is not None:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize('reader', ['conv', 'attention'])
def test_in_place_change_of_saved_spikes_is_an_error(reader):
    torch.manual_seed(0)
    if reader == 'conv':
        neuron, layer = SFANeuron(), SpikeConv2d(4, 4, 3, padding=1)
        x = torch.randn(2, 4, 8, 8, requires_grad=True)
        spikes = neuron(x * 3)
        out = layer(spikes)
    else:
        from sdt3_mm.models.layers.spike_code_ops import LinearAttentionProduct
        neuron = SFANeuron()
        x = torch.randn(3, 2, 4, 6, requires_grad=True)
        q, k, v = (neuron(x * s) for s in (1, 2, 3))
        out = LinearAttentionProduct()(q, k, v)
        spikes = k
    spikes.mul_(2)
    with pytest.raises(RuntimeError, match='modified by an inplace'):
        out.sum().backward()


def test_a_code_is_read_only_from_the_unmodified_output():
    """Spikes changed in place before a layer reads them, or replaced by a
    forward hook, are read as plain floats: no stale code is used."""
    neuron = SFANeuron()
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    spikes = neuron(x * 3)
    assert spike_code_of(spikes) is not None
    assert spike_code_of(spikes.reshape(2, 4, 64)) is None
    assert spike_code_of(reshape_spikes(spikes, (2, 4, 64))) is not None
    spikes.mul_(2)
    assert spike_code_of(spikes) is None
    assert spike_code_of(neuron.eval()(x)) is None
    neuron.train()
    handle = neuron.register_forward_hook(lambda m, i, out: out * 1)
    assert spike_code_of(neuron(x)) is None
    handle.remove()


def test_neuron_hooks_run_in_training_and_evaluation():
    model = ESpikeFormer(arch='t')
    calls = []
    for module in model.modules():
        if isinstance(module, SpikingNeuron):
            module.register_forward_hook(lambda *args: calls.append(1))
    x = torch.randn(1, 3, 32, 32)
    model.train()(x)
    num_train = len(calls)
    with torch.no_grad():
        model.eval()(x)
    assert num_train > 50 and len(calls) == 2 * num_train


def test_bf16_autocast_gradients_equal_the_plain_graph():
    model = _firing_model(BUILDS['base'])
    x = torch.randn(2, 3, 64, 48)
    results = []
    for m in (model, _plain(model)):
        with torch.autocast('cpu', dtype=torch.bfloat16):
            taps = m(x)
        assert taps[-1].dtype == torch.bfloat16
        sum(tap.float().square().mean() for tap in taps).backward()
        results.append([p.grad for p in m.parameters()])
    for a, b in zip(*results):
        if b is not None:
            assert a.dtype == torch.float32
            torch.testing.assert_close(a, b, rtol=1e-2, atol=1e-4)
