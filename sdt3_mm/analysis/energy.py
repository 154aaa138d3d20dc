"""Firing rates, synaptic operations and energy, counted from the tensors.

The convention of this line of work (Spike-driven Transformer V1-V3)::

    E = E_MAC * FLOPs(layers reading real values, e.g. the first conv)
      + E_AC  * sum over spike-reading layers of FLOPs(layer) * rate * T * D

where FLOPs are multiply-accumulates of a layer per time step as deployed
(BN folded: a stacked conv1d pair costs one conv), ``rate`` is the firing
rate of the layer's input per virtual time step (``mean k / D`` of the
tensor it read, ``k`` its integer counts, ``D`` the ``max_level`` of the
neurons that fired them), and ``T x D`` the real times virtual time steps:
E-SpikeFormer's SFA neurons fire ``D`` virtual steps in one real step
(``T = 1``), Meta-SpikeFormer's LIF neurons one binary spike per step over
``T`` real steps (``D = 1``).

Everything is counted from what ran, never estimated. A model over ``T``
real steps runs them folded into its batch (``T * B``), so the FLOPs of
each call, and the spikes its input holds, already cover the ``T`` steps:
per image, a spike-reading layer costs ``FLOPs(call) / B * mean k``,
which is ``FLOPs * rate * T * D`` above; a layer reading real values costs
its FLOPs as run (in a model over ``T`` steps the stem runs on the image
``T`` times). Which layers read spikes is decided by what they receive
(:mod:`.spike_inputs`): a layer reading upsampled spike maps, or a sum of
several levels' maps, is charged their counts.
docs/en/user_guides/spike_driven_and_energy.md works an example by hand.
"""
import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from mmengine.dist import all_reduce, get_world_size

from sdt3_mm.models.layers.spike_contract import MergedLayers, SpikeProduct
from sdt3_mm.models.neurons.spiking_neuron import spiking_neurons
from .spike_inputs import SpikeInputs, join_name, weight_layers

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
            :class:`~sdt3_mm.models.layers.spike_contract.MergedLayers`
            module (costed as the one layer it merges to).
        x (Tensor): Its input.
        y (Tensor): Its output.

    Returns:
        int: The number of multiply-accumulates.
    """
    if isinstance(layer, MergedLayers):
        return layer.merged_flops(x, y)
    if isinstance(layer, torch.nn.Linear):
        return y.numel() * layer.in_features
    if isinstance(layer, torch.nn.modules.conv._ConvTransposeNd):
        return x.numel() * (layer.out_channels // layer.groups) * math.prod(
            layer.kernel_size)
    return y.numel() * (layer.in_channels // layer.groups) * math.prod(
        layer.kernel_size)


def _add(a, b):
    return b if a is None else a + b


class _Op:
    """Counts of one weight layer or partial product, over its calls."""

    __slots__ = ('flops', 'mac_flops', 'spike_flops', 'votes', 'neuron')

    def __init__(self):
        self.flops = 0  # multiply-accumulates, all calls
        self.mac_flops = 0.  # of calls that read real values (tensor)
        self.spike_flops = 0.  # sum over spike calls of FLOPs/numel * sum k
        self.votes = None  # spike calls per norm index (tensor)
        self.neuron = None  # the neuron whose output it read, if known


class SpikeCounter:
    """Count spikes, FLOPs and synaptic operations of a model by hooks.

    Use as a context manager around the forwards to count (gradients are
    not needed), and say how many images each forward had::

        with SpikeCounter(model) as counter:
            for inputs in batches:
                model(inputs)
                counter.add_images(len(inputs))
        print(counter.summary(**ENERGY_PRESETS['fp32']))

    The counts persist when the block is left (so it may be entered again
    for more forwards); :meth:`reset` forgets them. Counts are kept as
    tensors on the model's device: reading them (:meth:`summary`,
    :meth:`all_reduce`) synchronises once.

    Any :class:`~sdt3_mm.models.neurons.spiking_neuron.SpikingNeuron` is
    counted through its contract (``spike_counts``, ``max_level``,
    ``norm``, ``time_steps``). What each weight layer costs is decided by
    what it receives, by the rule of :mod:`.spike_inputs`: an input of
    integer counts over a neuron's norm (a neuron's output, or anything made
    from outputs without arithmetic but adding counts: reshapes, nearest
    upsampling, pooling by max, concatenation, sums of spike maps) costs
    ``FLOPs / numel * sum(k)`` accumulates; any other input the layer's
    multiply-accumulates. A
    :class:`~sdt3_mm.models.layers.spike_contract.MergedLayers` module is one
    layer (its merged FLOPs, reading its input), and each partial product of
    a :class:`~sdt3_mm.models.layers.spike_contract.SpikeProduct` costs the
    FLOPs its module gives (``flops``) reading the operand its module names
    (``spike_operands``). The model must be in evaluation mode, where
    neurons, weight layers and products are called as modules.

    Args:
        model (nn.Module): The model; it must hold a spiking neuron.
    """

    def __init__(self, model):
        self.model = model
        self.neurons = OrderedDict(
            (module, name) for name, module in spiking_neurons(model))
        if not self.neurons:
            raise ValueError(
                f'SpikeCounter: {type(model).__name__} has no spiking neuron '
                f'(no SpikingNeuron module), so there are no spikes to count')
        self._inputs = SpikeInputs(model)
        self._handles = []
        self.reset()

    def reset(self):
        """Forget everything counted so far."""
        self.num_images = 0
        self.frames = None  # frames per image, once an image is counted
        # neuron name -> [sum of counts k (a tensor or 0.), outputs counted]
        self.spikes = {name: [0., 0] for name in self.neurons.values()}
        # layer or product name -> _Op, in execution order
        self.ops = OrderedDict()

    def add_images(self, num, frames=1):
        """Count ``num`` more images for the per-image figures.

        Args:
            num (int): Images (samples) the forward had.
            frames (int): Frames per sample: a ``B x T x C x H x W`` input,
                whose frames the backbone folds into its batch, is ``B``
                images of ``T`` frames. The counts already cover every
                frame; this sets the ``T`` the summary reports (frames x
                the neurons' real time steps). Defaults to 1.

        Raises:
            ValueError: If ``frames`` differs from an earlier call's (count
                clips of other lengths separately).
        """
        if isinstance(frames,
                      bool) or not isinstance(frames, int) or frames < 1:
            raise ValueError(f'SpikeCounter: frames must be a positive '
                             f'integer, got {frames!r}')
        if self.frames is not None and frames != self.frames:
            raise ValueError(
                f'SpikeCounter: images of {frames} frames after images of '
                f'{self.frames}; count clips of other lengths separately')
        self.frames = frames
        self.num_images += num

    def _time_steps(self, neuron):
        """Real time steps behind a neuron's counts per image: its own
        ``time_steps`` times the frames of each image."""
        return neuron.time_steps * (self.frames or 1)

    def __enter__(self):
        if self._handles:
            raise RuntimeError('SpikeCounter: already entered')
        try:
            self._handles.append(
                self.model.register_forward_pre_hook(self._inputs.new_forward))
            for neuron, name in self.neurons.items():
                self._hook(neuron, self._fire)
            for name, layer in weight_layers(self.model):
                self._hook(layer, self._layer_hook(name))
            for name, module in self.model.named_modules():
                if isinstance(module, SpikeProduct):
                    self._hook(module, self._product_hook(name))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._inputs.clear()

    def _hook(self, module, hook):
        self._handles.append(module.register_forward_hook(hook))

    def _fire(self, neuron, inputs, output):
        counts = neuron.spike_counts(output.detach())
        total = counts.sum(dtype=torch.float64)
        stats = self.spikes[self.neurons[neuron]]
        stats[0] = stats[0] + total
        stats[1] += output.numel()
        # Every tensor found for this output has its elements, so its sum
        # of counts is the output's.
        self._inputs.fired(neuron, output, total)

    def _count(self, name, flops, x):
        """Add a call of ``flops`` multiply-accumulates reading ``x``."""
        op = self.ops.get(name)
        if op is None:
            op = self.ops[name] = _Op()
        op.flops += flops
        read = self._inputs.read_lazily(x)
        per_element = flops / x.numel() if x.numel() else 0.
        op.spike_flops = op.spike_flops + read.total * per_element
        if read.neuron is not None:  # a neuron's output, known by identity
            op.neuron = read.neuron
            return
        # Decided by the values, as tensors: read with the summary.
        spikes = torch.as_tensor(read.is_spikes, device=x.device)
        op.mac_flops = op.mac_flops + torch.where(
            spikes, 0., float(flops)).to(torch.float64)
        vote = F.one_hot(
            torch.as_tensor(read.norm_index, device=x.device),
            len(self._inputs.norms))
        op.votes = _add(op.votes, vote * spikes)

    def _layer_hook(self, name):

        def hook(layer, inputs, output):
            x = inputs[0]
            self._count(name, layer_flops(layer, x, output), x)

        return hook

    def _product_hook(self, name):

        def hook(product, inputs, output):
            operands = dict(zip(product.operands, inputs))
            for key, flops in product.flops(*inputs).items():
                self._count(
                    join_name(name, key), flops,
                    operands[product.spike_operands[key]])

        return hook

    def _values(self):
        """Every count, as one list of floats read with one
        synchronisation: images, then (spikes, outputs) per neuron, then
        (FLOPs, MAC FLOPs, spike FLOPs, votes per norm) per op."""
        num_norms = len(self._inputs.norms)
        values = [float(self.num_images)]
        for total, size in self.spikes.values():
            values += [total, float(size)]
        for op in self.ops.values():
            values += [float(op.flops), op.mac_flops, op.spike_flops]
            values += [0.] * num_norms if op.votes is None else list(
                op.votes.to(torch.float64).unbind())
        where = [i for i, v in enumerate(values) if torch.is_tensor(v)]
        if where:
            device = values[where[0]].device
            read = torch.stack([
                values[i].to(device, torch.float64) for i in where
            ]).tolist()
            for i, value in zip(where, read):
                values[i] = value
        return values

    def all_reduce(self):
        """Sum the counts of every process of a distributed run (each
        process must have counted at least one batch, so that all know
        the same layers); no-op otherwise."""
        if get_world_size() == 1:
            return
        packed = torch.tensor(self._values(), dtype=torch.float64)
        all_reduce(packed)
        values = iter(packed.tolist())
        self.num_images = int(next(values))
        for stats in self.spikes.values():
            stats[0], stats[1] = next(values), int(next(values))
        for op in self.ops.values():
            op.flops = int(next(values))
            op.mac_flops, op.spike_flops = next(values), next(values)
            op.votes = torch.tensor(
                [next(values) for _ in self._inputs.norms],
                dtype=torch.float64)

    def _read(self):
        """Neuron counts, and per op ``(FLOPs, MAC FLOPs, spike FLOPs,
        neuron)`` with the neuron whose ``T`` and ``D`` its spikes are
        reported with (None: it read only real values)."""
        values = iter(self._values())
        next(values)
        spikes = {
            name: (next(values), int(next(values)))
            for name in self.spikes
        }
        ops = OrderedDict()
        for name, op in self.ops.items():
            flops, mac_flops, spike_flops = (next(values), next(values),
                                             next(values))
            votes = [next(values) for _ in self._inputs.norms]
            neuron = op.neuron
            if neuron is None and any(votes):
                norm = self._inputs.norms[votes.index(max(votes))]
                neuron = self._inputs.neuron_of_norm(norm)
            ops[name] = (flops, mac_flops, spike_flops, neuron)
        return spikes, ops

    def neuron_table(self, spikes=None):
        """Per neuron that ran: T, D (``max_level``), mean count ``k`` and
        firing rate per virtual step (mean ``k`` / D)."""
        if spikes is None:
            spikes = self._read()[0]
        rows = []
        for neuron, name in self.neurons.items():
            total, count = spikes[name]
            if count:
                mean = total / count
                rows.append(
                    dict(
                        neuron=name,
                        T=self._time_steps(neuron),
                        D=neuron.max_level,
                        mean_integer=mean,
                        firing_rate=mean / neuron.max_level))
        return rows

    def mean_firing_rate(self, spikes=None):
        """Spikes sent over spikes possible, over every neuron that ran."""
        if spikes is None:
            spikes = self._read()[0]
        sent = sum(total for total, _ in spikes.values())
        possible = sum(spikes[name][1] * neuron.max_level
                       for neuron, name in self.neurons.items())
        return sent / possible if possible else float('nan')

    def summary(self, e_mac=4.6, e_ac=0.9):
        """Per-layer and total figures, per image.

        Args:
            e_mac (float): Energy of a multiply-accumulate, pJ.
            e_ac (float): Energy of an accumulate, pJ.

        Returns:
            dict: ``layers`` (in execution order: name, ``T`` and ``D`` of
            the neurons feeding it, input firing rate per virtual step
            (mean count over D: above 1 for a sum of spike maps), FLOPs
            (all T steps), synaptic ops (accumulates; a MAC layer's FLOPs),
            the FLOPs of calls on real values (``mac_flops``), ``'MAC'``,
            ``'AC'`` or ``'AC+MAC'``, energy in pJ, each per image), the
            totals ``energy_mj``,
            ``mac_flops`` and ``ac_sops``, ``T`` and ``D`` (the sorted
            values of the neurons; ``T`` counts real time steps times the
            frames of each image, see :meth:`add_images`), ``e_mac_pj``,
            ``e_ac_pj``, ``mean_firing_rate`` and ``neurons`` (per
            neuron).

        Raises:
            RuntimeError: If no image was counted, or no neuron fired
                through a module call (a layer that calls its neuron's
                methods directly hides it from the hooks).
        """
        if not self.num_images:
            raise RuntimeError('SpikeCounter: no images were counted; '
                               'call add_images after each forward')
        spikes, ops = self._read()
        if not any(size for _, size in spikes.values()):
            raise RuntimeError(
                f'SpikeCounter: none of the {len(self.neurons)} spiking '
                f'neurons was called as a module during the forwards, so '
                f'no spike was seen (is the model in eval mode?)')
        per_image = 1. / self.num_images
        layers = []
        for name, (flops, mac_flops, spike_flops, neuron) in ops.items():
            spike_call_flops = flops - mac_flops
            if neuron is None:
                row = dict(
                    T=None,
                    D=None,
                    firing_rate=None,
                    sops=flops * per_image,
                    mac_flops=flops * per_image,
                    op='MAC',
                    energy_pj=e_mac * flops * per_image)
            else:
                row = dict(
                    T=self._time_steps(neuron),
                    D=neuron.max_level,
                    firing_rate=spike_flops /
                    (spike_call_flops *
                     neuron.max_level) if spike_call_flops else 0.,
                    sops=spike_flops * per_image,
                    mac_flops=mac_flops * per_image,
                    # a layer whose calls read spikes and real values alike
                    # (a shared layer) pays each call's way
                    op='AC+MAC' if mac_flops else 'AC',
                    energy_pj=(e_ac * spike_flops + e_mac * mac_flops) *
                    per_image)
            layers.append(dict(layer=name, flops=flops * per_image, **row))
        return dict(
            layers=layers,
            num_images=self.num_images,
            T=sorted({self._time_steps(neuron)
                      for neuron in self.neurons}),
            D=sorted({neuron.max_level
                      for neuron in self.neurons}),
            e_mac_pj=e_mac,
            e_ac_pj=e_ac,
            mac_flops=sum(r['mac_flops'] for r in layers),
            ac_sops=sum(r['sops'] for r in layers if r['op'] != 'MAC'),
            energy_mj=sum(r['energy_pj'] for r in layers) * 1e-9,
            mean_firing_rate=self.mean_firing_rate(spikes),
            neurons=self.neuron_table(spikes))
