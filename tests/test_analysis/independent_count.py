"""A count of every weight layer's cost made without our analysis code.

For each call of a conv, transposed conv or linear layer (and of each
attention product) the multiply-accumulates come from PyTorch's own FLOP
counter (``torch.utils.flop_counter.FlopCounterMode``, run on the call's
input again through the functional op), and whether the input holds spikes,
and how many, from the input's values: ``x * n`` is a tensor of non-negative
integers for ``n`` = 1 or a neuron's norm (the smallest such ``n``). A call on
spikes costs ``MACs / numel * sum(x * n)`` accumulates, any other its MACs.
"""
from collections import defaultdict

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from sdt3_mm.models.layers.spike_code_ops import LinearAttentionProduct
from sdt3_mm.models.neurons.spiking_neuron import SpikingNeuron

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _macs(fn):
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() // 2


def _call_macs(layer, x):
    if isinstance(layer, nn.Linear):
        return _macs(lambda: F.linear(x, layer.weight, layer.bias))
    if isinstance(layer, nn.ConvTranspose2d):
        return _macs(lambda: F.conv_transpose2d(
            x, layer.weight, layer.bias, layer.stride, layer.padding,
            layer.output_padding, layer.groups, layer.dilation))
    return _macs(lambda: layer._conv_forward(x, layer.weight, layer.bias))


def spike_sum(x, norms, last_norm=None):
    """``sum(x * n)`` for the first ``n`` making ``x * n`` non-negative
    integers (exactly, in float64), trying the norm of the neuron that fired
    last first, then 1 and ``norms`` ascending; else None."""
    x = x.detach().double()
    order = sorted({1.} | set(norms))
    if last_norm is not None:
        order = [last_norm] + [n for n in order if n != last_norm]
    for norm in order:
        counts = x * norm
        if torch.equal(counts, counts.round()) and bool((counts >= 0).all()):
            return counts.sum().item()
    return None


class IndependentCount:
    """Hooks recording, per layer name, accumulates and MACs of its calls.

    Args:
        model (nn.Module): The model (evaluation mode).
        norms (Iterable[float]): The norms of its neurons.
    """

    def __init__(self, model, norms):
        self.norms = set(norms)
        self.sops = defaultdict(float)
        self.macs = defaultdict(float)
        self.last_norm = None
        self._handles = [model.register_forward_pre_hook(self._new_forward)]
        for name, module in model.named_modules():
            if isinstance(module, SpikingNeuron):
                self._handles.append(
                    module.register_forward_hook(self._neuron))
            elif isinstance(module,
                            (*_CONVS, nn.Linear, nn.ConvTranspose2d)):
                self._handles.append(
                    module.register_forward_hook(self._layer(name)))
            elif isinstance(module, LinearAttentionProduct):
                self._handles.append(
                    module.register_forward_hook(self._product(name)))

    def _new_forward(self, *unused):
        self.last_norm = None

    def _neuron(self, neuron, inputs, output):
        self.last_norm = float(neuron.norm)

    def _charge(self, name, macs, x):
        total = spike_sum(x, self.norms, self.last_norm)
        if total is None:
            self.macs[name] += macs
        else:
            self.sops[name] += macs / x.numel() * total

    def _layer(self, name):

        def hook(layer, inputs, output):
            self._charge(name, _call_macs(layer, inputs[0]), inputs[0])

        return hook

    def _product(self, name):

        def hook(product, inputs, output):
            q, k, v = inputs
            kv = v @ k.transpose(-2, -1)
            # v @ k^T consumes k's spikes, the product with q q's.
            self._charge(f'{name}.kv',
                         _macs(lambda: v @ k.transpose(-2, -1)), k)
            self._charge(f'{name}.q', _macs(lambda: kv @ q), q)

        return hook

    def remove(self):
        for handle in self._handles:
            handle.remove()


def assert_summary_matches(summary, count, num_images, rel=0.01):
    """Every row of ``summary`` (a :class:`SpikeCounter` summary) charged
    as the independent count charges it, within ``rel``, and the totals."""
    rows = {row['layer']: row for row in summary['layers']}
    names = set(count.sops) | set(count.macs)
    assert set(rows) == names, (set(rows) ^ names)
    for name in names:
        row = rows[name]
        sops = count.sops.get(name, 0.) / num_images
        macs = count.macs.get(name, 0.) / num_images
        assert row['mac_flops'] == _approx(macs, rel), name
        if name in count.sops:
            assert row['op'] != 'MAC', name
            assert row['sops'] == _approx(sops, rel), name
        else:
            assert row['op'] == 'MAC', name
    assert summary['ac_sops'] == _approx(
        sum(count.sops.values()) / num_images, rel)
    assert summary['mac_flops'] == _approx(
        sum(count.macs.values()) / num_images, rel)


def _approx(value, rel):
    import pytest
    return pytest.approx(value, rel=rel, abs=1e-6)
