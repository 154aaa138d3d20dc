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
from sdt3_mm.models.layers.spike_code_ops import SpikeConv2d, _backward_layout
from sdt3_mm.models.layers.blocks import SpikeConvBN
from sdt3_mm.models.neurons.spiking_neuron import (SpikeCode, SpikingNeuron,
                                                   reshape_spikes,
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


def _depthwise_grads(conv, x, grad_out, neuron_training, dtype):
    """Gradients of input, weight and bias of ``conv(neuron(x))``; with the
    neuron in training the conv reads the spikes' code."""
    x = x.clone().requires_grad_()
    conv.zero_grad()
    spikes = SFANeuron().train(neuron_training)(x)
    assert (spike_code_of(spikes) is not None) == neuron_training
    with torch.autocast('cpu', dtype=dtype, enabled=dtype != torch.float32):
        out = conv(spikes)
    out.backward(grad_out.to(out.dtype))
    return x.grad, conv.weight.grad, conv.bias.grad


@pytest.mark.parametrize('kernel, stride, padding, dilation', [
    (7, 1, 3, 1),
    (7, 2, 3, 1),
    (5, 1, 0, 2),
    ((5, 3), (2, 1), (1, 2), 1),
])
def test_depthwise_conv_gradients_in_channels_last_match_torch(
        kernel, stride, padding, dilation):
    """A depthwise conv larger than 3 x 3 computes its backward on
    channels_last tensors: within 1e-5 relative of torch's NCHW gradients
    for the conv on the float spikes, returned NCHW-contiguous."""
    torch.manual_seed(0)
    conv = SpikeConv2d(
        6, 6, kernel, stride, padding, dilation, groups=6, bias=True)
    x = torch.randn(3, 6, 19, 17) * 3
    with torch.no_grad():
        grad_out = torch.randn_like(conv(x))
    for dtype in (torch.float32, torch.float64):
        conv.to(dtype)
        grads = _depthwise_grads(conv, x.to(dtype), grad_out, True,
                                 torch.float32)
        plain = _depthwise_grads(conv, x.to(dtype), grad_out, False,
                                 torch.float32)
        for a, b in zip(grads, plain):
            assert a.is_contiguous() and a.dtype == dtype
            assert (a - b).abs().max() <= 1e-5 * b.abs().max()


def test_depthwise_conv_gradients_under_bf16_autocast():
    torch.manual_seed(0)
    conv = SpikeConv2d(8, 8, 7, padding=3, groups=8, bias=True)
    x = torch.randn(2, 8, 16, 16) * 3
    grad_out = torch.randn(2, 8, 16, 16)
    grads = _depthwise_grads(conv, x, grad_out, True, torch.bfloat16)
    plain = _depthwise_grads(conv, x, grad_out, False, torch.bfloat16)
    for a, b in zip(grads, plain):
        assert a.dtype == torch.float32 and a.is_contiguous()
        torch.testing.assert_close(a, b, rtol=1e-2, atol=1e-3)


def test_backward_layout_is_channels_last_only_for_large_depthwise_kernels():
    """oneDNN's NCHW depthwise weight gradient is fast for 3 x 3 only: the
    conv backward switches layout for larger depthwise kernels on CPU,
    and only when the weight gradient is asked for."""
    code = torch.zeros(2, 6, 9, 9, dtype=torch.uint8)
    all_grads = [True, True, False]

    def layout(weight, groups, mask=all_grads, code=code):
        return _backward_layout(code, weight, groups, mask)

    assert layout(torch.empty(6, 1, 7, 7), 6) == torch.channels_last
    assert layout(torch.empty(6, 1, 5, 3), 6) == torch.channels_last
    assert layout(torch.empty(6, 1, 3, 3), 6) == torch.contiguous_format
    assert layout(torch.empty(6, 2, 7, 7), 3) == torch.contiguous_format
    assert layout(torch.empty(12, 1, 7, 7), 6) == torch.contiguous_format
    assert layout(
        torch.empty(6, 1, 7, 7), 6, mask=[True, False,
                                          False]) == torch.contiguous_format
    assert layout(
        torch.empty(6, 1, 7), 6, code=code[..., 0]) == torch.contiguous_format


def test_decode_into_a_given_layout():
    data = torch.arange(256, dtype=torch.uint8).repeat(2).view(2, 4, 8, 8)
    for dtype in (torch.float32, torch.bfloat16, torch.float64):
        for norm in (1., 3., 4.):
            code = SpikeCode(data, norm)
            out = torch.empty(
                data.shape, dtype=dtype, memory_format=torch.channels_last)
            assert code.decode(dtype, out=out) is out
            assert out.is_contiguous(memory_format=torch.channels_last)
            assert torch.equal(out, code.decode(dtype))
            assert torch.equal(out * norm, (data & 0x7F).to(dtype))
    with pytest.raises(ValueError, match='out must have the code'):
        SpikeCode(data, 4.).decode(
            torch.float32, out=torch.empty(2, 4, 8, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match='out must have the code'):
        SpikeCode(data, 4.).decode(torch.float32, out=torch.empty(2, 4, 64))
