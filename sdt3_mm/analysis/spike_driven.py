"""Spike-driven execution: integers sent as binary spikes over D steps.

In training and in ordinary evaluation an SFA neuron sends an integer
``k`` in ``0..D`` (scaled by ``1 / norm``). On neuromorphic hardware it
sends ``k`` binary spikes over ``D`` virtual time steps instead. Inside
:class:`SpikeDriven`, every SFA neuron emits those D binary maps (step
``t`` fires where ``k > t``) and every weight layer that reads a neuron's
output (conv, linear, and the attention products) is applied to the
binary maps one step at a time and accumulates, with its bias added once.
Each binary map is checked to be exactly {0, 1} before it is used.

What still multiplies is reported, with where it happens: weight layers
reading real values (the stem on pixels, the second conv of an unfolded
stacked projection, the KD head's ``fc`` on pooled features), BatchNorms
that were not folded (:func:`fold_bn` folds them), the attention scale
and the large family's layer scales (per-channel constants that a chip
folds into the next threshold or weights). The ``1 / norm`` of a neuron
is a power-of-two rescale of the weights it feeds and is not listed.
"""
import functools
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

from sdt3_mm.models.utils.sfa_neuron import SFANeuron
from sdt3_mm.models.utils.spike_layers import (LargeTransformerBlock,
                                               SpikeLinearAttention,
                                               StackedConvBN1d)
from .spike_sources import SpikeSources, join_name, weight_layers


class SpikeDrivenReport:
    """What a spike-driven run did.

    Attributes:
        binary_maps (int): Binary maps checked and consumed.
        expanded (OrderedDict): Weight layers and attention products run
            on binary maps, by name, with the number of calls.
        non_additions (OrderedDict): Operations that multiply, by name,
            with the reason.
        layer_errors (OrderedDict): With ``compare=True``: per layer, the
            largest difference between its spike-driven output and its
            output on the integers (same input), relative to the largest
            magnitude of the latter (at least 1).
    """

    def __init__(self):
        self.binary_maps = 0
        self.expanded = OrderedDict()
        self.non_additions = OrderedDict()
        self.layer_errors = OrderedDict()

    def max_layer_error(self):
        return max(self.layer_errors.values(), default=0.)


def _apply_weights(layer, x):
    """``layer`` on ``x`` without its bias (conv, deconv or linear)."""
    if isinstance(layer, torch.nn.Linear):
        return F.linear(x, layer.weight)
    if isinstance(layer, torch.nn.ConvTranspose2d):
        return F.conv_transpose2d(x, layer.weight, None, layer.stride,
                                  layer.padding, layer.output_padding,
                                  layer.groups, layer.dilation)
    return layer._conv_forward(x, layer.weight, None)


def _add_bias(layer, y):
    if layer.bias is None:
        return y
    if isinstance(layer, torch.nn.Linear):
        return y + layer.bias
    return y + layer.bias.view(-1, *([1] * (y.dim() - 2)))


class SpikeDriven:
    """Run a model spike-driven: a context manager.

    Example::

        with SpikeDriven(model, compare=True) as report:
            out = model(inputs)
        print(report.non_additions, report.max_layer_error())

    Args:
        model (nn.Module): A model made of SFA neurons and torch weight
            layers (any of ours, whole detectors and segmentors included).
        compare (bool): Also run every expanded layer on the integers it
            was given and record the difference in ``layer_errors``.
    """

    def __init__(self, model, compare=False):
        self.model = model
        self.compare = compare
        self.report = SpikeDrivenReport()
        self._sources = SpikeSources()
        self._patched = []
        self._handles = []

    def __enter__(self):
        names = {module: name for name, module in self.model.named_modules()}
        for module, name in names.items():
            if isinstance(module, SFANeuron):
                self._patch(module, self._fire, name)
            elif isinstance(module, SpikeLinearAttention):
                self._patch(module, self._attention, name)
            elif isinstance(module, _BatchNorm):
                self._handles.append(
                    module.register_forward_hook(
                        self._note(
                            name, 'BatchNorm (a multiply-add per '
                            'element; fold_bn folds it)')))
            elif isinstance(module, LargeTransformerBlock):
                for scale in ('layer_scale1', 'layer_scale2'):
                    self._handles.append(
                        module.register_forward_hook(
                            self._note(
                                join_name(name, scale),
                                'per-channel layer scale')))
        for name, layer in weight_layers(self.model):
            if isinstance(layer, StackedConvBN1d):
                self._patch(layer.conv1, self._layer, join_name(name, 'conv1'))
                self._handles.append(
                    layer.conv2.register_forward_hook(
                        self._note(
                            join_name(name, 'conv2'),
                            'reads the real output of the stacked '
                            'projection\'s first BN (fold_bn merges the '
                            'pair)')))
            else:
                self._patch(layer, self._layer, name)
        return self.report

    def __exit__(self, *exc):
        for module, forward in self._patched:
            if forward is None:
                del module.forward
            else:
                module.forward = forward
        for handle in self._handles:
            handle.remove()
        self._patched.clear()
        self._handles.clear()
        self._sources.clear()

    def _patch(self, module, method, name):
        self._patched.append((module, module.__dict__.get('forward')))
        module.forward = functools.partial(method, module, module.forward,
                                           name)

    def _note(self, name, reason):

        def hook(module, inputs, output):
            self.report.non_additions[name] = reason

        return hook

    def _fire(self, neuron, forward, name, x):
        out = forward(x)
        counts = torch.round(out * neuron.norm)
        if not (torch.equal(counts.clamp(0, neuron.D), counts)
                and torch.allclose(
                    out * neuron.norm, counts, rtol=0, atol=1e-6 * neuron.D)):
            raise AssertionError(f'{name}: output is not an integer in '
                                 f'0..{neuron.D} over {neuron.norm:g}')
        maps = []
        for step in range(neuron.D):
            spikes = (counts > step).to(out.dtype)
            if not ((spikes == 0) | (spikes == 1)).all():
                raise AssertionError(f'{name}: virtual step {step} is not '
                                     f'binary')
            maps.append(spikes)
        self.report.binary_maps += len(maps)
        self._sources.add(out, neuron, maps)
        return out

    def _spike_maps(self, x):
        """The binary maps behind ``x``, shaped like ``x``, and the norm."""
        neuron, maps, source = self._sources.lookup(x)
        if source is not x:
            maps = [m.reshape(x.shape) for m in maps]
        return maps, neuron.norm

    def _record(self, name, spike_driven, integer):
        self.report.expanded[name] = self.report.expanded.get(name, 0) + 1
        if self.compare:
            scale = integer.detach().abs().max().clamp(min=1)
            error = ((spike_driven - integer).abs().max() / scale).item()
            self.report.layer_errors[name] = max(
                error, self.report.layer_errors.get(name, 0.))

    def _layer(self, layer, forward, name, x):
        if self._sources.lookup(x) is None:
            self.report.non_additions[name] = 'reads real values (MAC)'
            return forward(x)
        maps, norm = self._spike_maps(x)
        accumulated = _apply_weights(layer, maps[0])
        for spikes in maps[1:]:
            accumulated = accumulated + _apply_weights(layer, spikes)
        y = _add_bias(layer, accumulated / norm)
        self._record(name, y, forward(x) if self.compare else None)
        return y

    def _attention(self, attention, forward, name, x):
        q, k, v = attention.heads(x)
        (q_maps, q_norm), (k_maps, k_norm), (v_maps, v_norm) = (
            self._spike_maps(t) for t in (q, k, v))
        # k^T v, channel-first (v @ k^T): binary x binary products, each an
        # AND and a count, accumulated over every pair of virtual steps.
        kv = sum(vs @ ks.transpose(-2, -1) for ks in k_maps for vs in v_maps)
        kv = kv / (k_norm * v_norm)
        # (k^T v) @ q: each q spike adds a column of that integer matrix.
        y = sum(kv @ qs for qs in q_maps) / q_norm
        if self.compare:
            kv_integer = v @ k.transpose(-2, -1)
            self._record(join_name(name, 'kv'), kv, kv_integer)
            self._record(join_name(name, 'q'), y, kv_integer @ q)
        else:
            self._record(join_name(name, 'kv'), kv, None)
            self._record(join_name(name, 'q'), y, None)
        self.report.non_additions[join_name(
            name, 'scale')] = (f'attention scale x{attention.scale:g}')
        return attention.output(y, x)
