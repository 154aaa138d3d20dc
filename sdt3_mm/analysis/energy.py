"""Firing rates, synaptic operations and energy, counted from the tensors.

The convention of this line of work (Spike-driven Transformer V1-V3)::

    E = E_MAC * FLOPs(layers reading real values, i.e. the first conv)
      + E_AC  * sum over spike-reading layers of FLOPs(layer) * rate * T * D

where FLOPs are multiply-accumulates of the layer as deployed (BN folded:
a stacked conv1d pair costs one conv), ``rate`` is the firing rate of the
layer's input per virtual time step, ``mean integer output / D`` of the
neuron that feeds it, and ``T x D`` the real times virtual time steps
(T = 1 for static images). Rates are summed from every neuron's actual
output during the forwards that were run, never estimated.
"""
import math
from collections import OrderedDict

import torch
from mmengine.dist import all_reduce, get_world_size

from sdt3_mm.models.utils.sfa_neuron import SFANeuron
from sdt3_mm.models.utils.spike_layers import (SpikeLinearAttention,
                                               StackedConvBN1d)
from .spike_sources import SpikeSources, join_name, weight_layers

# Energy per operation in pJ, 45 nm CMOS (Horowitz, ISSCC 2014): a MAC is
# a multiply plus an add, an AC an add.
ENERGY_PRESETS = {
    'fp32': dict(e_mac=4.6, e_ac=0.9),
    'fp16': dict(e_mac=1.5, e_ac=0.4),
    'int8': dict(e_mac=0.23, e_ac=0.03),
}


def layer_flops(layer, x, y):
    """Multiply-accumulates of one call of a weight layer.

    Args:
        layer (nn.Module): A conv, transposed conv, linear layer or a
            :class:`StackedConvBN1d` (costed as the one conv it folds to).
        x (Tensor): Its input.
        y (Tensor): Its output.

    Returns:
        int: The number of multiply-accumulates.
    """
    if isinstance(layer, StackedConvBN1d):
        return x.numel() * layer.conv2.out_channels
    if isinstance(layer, torch.nn.Linear):
        return y.numel() * layer.in_features
    if isinstance(layer, torch.nn.ConvTranspose2d):
        return x.numel() * (layer.out_channels // layer.groups) * math.prod(
            layer.kernel_size)
    return y.numel() * (layer.in_channels // layer.groups) * math.prod(
        layer.kernel_size)


def attention_flops(x, value_channels, num_heads):
    """Multiply-accumulates of each attention product, ``k^T @ v`` and
    ``(k^T v) @ q``: ``B * N * C * C_v / heads`` for an input ``x`` of
    ``B x C x N`` (or ``B x C x H x W``)."""
    num_tokens = x.shape[2:].numel()
    return x.shape[0] * num_tokens * x.shape[1] * value_channels // num_heads


class SpikeCounter:
    """Count spikes, FLOPs and synaptic operations of a model by hooks.

    Use as a context manager around the forwards to count (gradients are
    not needed), and say how many images each forward had::

        with SpikeCounter(model) as counter:
            for inputs in batches:
                model(inputs)
                counter.add_images(len(inputs))
        print(counter.summary(**ENERGY_PRESETS['fp32']))

    A weight layer whose input is a neuron's output (or a reshaped view of
    it) costs accumulates: ``FLOPs * rate * T * D``, with the rate counted
    from that input. Any other weight layer reads real values and costs
    multiply-accumulates. The attention products read the k and the q
    spikes (the operand sent one binary map per virtual step).

    Args:
        model (nn.Module): The model; its neurons must be SFA neurons.
        time_steps (int): Real time steps T (1 for static images).
    """

    def __init__(self, model, time_steps=1):
        self.model = model
        self.time_steps = time_steps
        self.neurons = OrderedDict((module, name)
                                   for name, module in model.named_modules()
                                   if isinstance(module, SFANeuron))
        if not self.neurons:
            raise ValueError(
                f'SpikeCounter: {type(model).__name__} has no SFA neuron to '
                f'count (multi-step LIF models are not counted)')
        self._sources = SpikeSources()
        self._last_mean = {}
        self._last_channels = {}
        self._handles = []
        self.reset()

    def reset(self):
        """Forget everything counted so far."""
        self.num_images = 0
        self.spikes = {name: [0., 0] for name in self.neurons.values()}
        # layer name -> [FLOPs, synaptic ops, D of its input or None]
        self.ops = OrderedDict()

    def add_images(self, num):
        """Count ``num`` more images for the per-image figures."""
        self.num_images += num

    def __enter__(self):
        for neuron in self.neurons:
            self._handles.append(neuron.register_forward_hook(self._fire))
        for name, layer in weight_layers(self.model):
            self._handles.append(
                layer.register_forward_hook(self._layer_hook(name)))
        for name, module in self.model.named_modules():
            if isinstance(module, SpikeLinearAttention):
                self._handles.append(
                    module.register_forward_hook(self._attention_hook(name)))
        return self

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._sources.clear()
        self._last_mean.clear()
        self._last_channels.clear()

    def _fire(self, neuron, inputs, output):
        # The integer is output * norm; summed in float64 to stay exact.
        total = output.detach().double().sum().item() * neuron.norm
        self._last_mean[neuron] = total / output.numel()
        self._last_channels[neuron] = output.shape[1]
        self._sources.add(output, neuron)
        stats = self.spikes[self.neurons[neuron]]
        stats[0] += total
        stats[1] += output.numel()

    def _count(self, name, flops, neuron=None, mean_integer=None):
        stats = self.ops.setdefault(name, [0, 0., None])
        stats[0] += flops
        if neuron is not None:
            stats[1] += flops * mean_integer * self.time_steps
            stats[2] = neuron.D

    def _layer_hook(self, name):

        def hook(layer, inputs, output):
            x = inputs[0]
            flops = layer_flops(layer, x, output)
            source = self._sources.lookup(x)
            if source is None:
                self._count(name, flops)
            else:
                neuron = source[0]
                mean = x.detach().double().mean().item() * neuron.norm
                self._count(name, flops, neuron, mean)

        return hook

    def _attention_hook(self, name):

        def hook(attention, inputs, output):
            flops = attention_flops(inputs[0],
                                    self._last_channels[attention.v_neuron],
                                    attention.num_heads)
            for product, neuron in (('kv', attention.k_neuron),
                                    ('q', attention.q_neuron)):
                self._count(
                    join_name(name, product), flops, neuron,
                    self._last_mean[neuron])

        return hook

    def all_reduce(self):
        """Sum the counts of every process of a distributed run (each
        process must have counted at least one batch); no-op otherwise."""
        if get_world_size() == 1:
            return
        packed = torch.tensor(
            [self.num_images] + [v for s in self.spikes.values() for v in s] +
            [v for s in self.ops.values() for v in s[:2]],
            dtype=torch.float64)
        all_reduce(packed)
        values = iter(packed.tolist())
        self.num_images = int(next(values))
        for stats in self.spikes.values():
            stats[0], stats[1] = next(values), int(next(values))
        for stats in self.ops.values():
            stats[0], stats[1] = int(next(values)), next(values)

    def neuron_table(self):
        """Per neuron that ran: D, mean integer output and firing rate per
        virtual step (mean integer / D)."""
        rows = []
        for neuron, name in self.neurons.items():
            total, count = self.spikes[name]
            if count:
                mean = total / count
                rows.append(
                    dict(
                        neuron=name,
                        D=neuron.D,
                        mean_integer=mean,
                        firing_rate=mean / neuron.D))
        return rows

    def mean_firing_rate(self):
        """Spikes sent over spikes possible, over every neuron that ran."""
        sent = sum(s[0] for s in self.spikes.values())
        possible = sum(self.spikes[name][1] * neuron.D
                       for neuron, name in self.neurons.items())
        return sent / possible if possible else float('nan')

    def summary(self, e_mac=4.6, e_ac=0.9):
        """Per-layer and total figures, per image.

        Args:
            e_mac (float): Energy of a multiply-accumulate, pJ.
            e_ac (float): Energy of an accumulate, pJ.

        Returns:
            dict: ``layers`` (in execution order: name, D, input firing
            rate, FLOPs, synaptic ops, ``'MAC'`` or ``'AC'``, energy in pJ,
            each per image), the totals ``energy_mj``, ``mac_flops`` and
            ``ac_sops``, ``T``, ``D`` (of the neurons), ``e_mac_pj``,
            ``e_ac_pj``, ``mean_firing_rate`` and ``neurons`` (per neuron).
        """
        if not self.num_images:
            raise RuntimeError('SpikeCounter: no images were counted; '
                               'call add_images after each forward')
        per_image = 1. / self.num_images
        layers = []
        for name, (flops, sops, depth) in self.ops.items():
            if depth is None:
                row = dict(
                    D=None,
                    firing_rate=None,
                    sops=flops * per_image,
                    op='MAC',
                    energy_pj=e_mac * flops * per_image)
            else:
                row = dict(
                    D=depth,
                    firing_rate=sops /
                    (flops * self.time_steps * depth) if flops else 0.,
                    sops=sops * per_image,
                    op='AC',
                    energy_pj=e_ac * sops * per_image)
            layers.append(dict(layer=name, flops=flops * per_image, **row))
        return dict(
            layers=layers,
            num_images=self.num_images,
            T=self.time_steps,
            D=sorted({neuron.D
                      for neuron in self.neurons}),
            e_mac_pj=e_mac,
            e_ac_pj=e_ac,
            mac_flops=sum(r['flops'] for r in layers if r['op'] == 'MAC'),
            ac_sops=sum(r['sops'] for r in layers if r['op'] == 'AC'),
            energy_mj=sum(r['energy_pj'] for r in layers) * 1e-9,
            mean_firing_rate=self.mean_firing_rate(),
            neurons=self.neuron_table())
