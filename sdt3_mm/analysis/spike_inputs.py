"""Whether what a layer receives is spikes: the one rule of the spike tools.

Spike counting and energy (:class:`~.energy.SpikeCounter`, and through it
:class:`~sdt3_mm.engine.FiringRateHook` and ``spike_energy.py``) and
spike-driven execution (:class:`~.spike_driven.SpikeDriven`) ask of every
input of a weight layer or spike product one question, answered here once:

    The input holds spikes when its values are integer counts ``k >= 0``
    over the norm ``n`` of one of the model's neurons, or over 1:
    ``x = k / n``, element by element. It then costs accumulates,
    ``sum(k)`` of them per multiply-accumulate of the layer per input
    element (``FLOPs / numel * sum(k)``); any other input costs the
    layer's multiply-accumulates.

A neuron's output is such a tensor by the neuron contract
(:class:`~sdt3_mm.models.neurons.spiking_neuron.SpikingNeuron`), and so is
everything made from outputs without arithmetic on their values other than
adding counts: reshapes and views, nearest upsampling, max pooling,
concatenation, zero padding, and sums of spike maps of one norm (``k1 / n +
k2 / n = (k1 + k2) / n``: a layer reading a sum of maps costs what it would
reading each map, since its output is the sum of those). The rule reads the
values, so no list of such operations is kept, and a block added later is
charged by what its layers really receive.

Integer values are counts over norm 1: an event camera's frames (counts of
events per pixel, or binarised) are spikes before any neuron, so a stem on
them accumulates; a stem on normalised pixels multiplies.

Which norm: when the tensor is a neuron's output or a reshape of it (known
by identity, :class:`SpikeSources`), that neuron's. Otherwise the values
decide, trying first the norm of the neuron that fired last (a tensor made
from outputs is made from the spikes just fired: the scale heads' maps
summed right after their neurons), then 1 and the model's other norms,
smallest first. The first norm that fits is taken, so a tensor whose counts
all happen to be multiples of its norm (every element silent or saturated)
is still read at its neurons' norm, not as fewer spikes of a coarser one.
A tensor that is zero everywhere is counts of zero: it costs nothing.

Values are compared exactly where the norms' least common multiple is a
power of two (``k / n`` and its sums are exact in floating point), and
otherwise with a tolerance of a few units in the last place; a real-valued
tensor of more than a handful of elements never passes by chance.
"""
import math
import weakref
from typing import NamedTuple

import torch
from torch import nn

from sdt3_mm.models.layers.spike_contract import MergedLayers
from sdt3_mm.models.neurons.spiking_neuron import spiking_neurons

WEIGHT_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear,
                 nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)

#: Units in the last place by which ``x * norm`` may miss an integer.
_ULPS = 8


def join_name(prefix, name):
    """``prefix.name``, or ``name`` under the root module (prefix ``''``)."""
    return f'{prefix}.{name}' if prefix else name


def weight_layers(model):
    """The weight layers of ``model`` as deployed, by name.

    A :class:`~sdt3_mm.models.layers.spike_contract.MergedLayers` module
    (a stacked projection, a RepConv) counts as one layer: in evaluation
    its parts are one linear map.

    Args:
        model (nn.Module): The model.

    Returns:
        list[tuple[str, nn.Module]]: Names and layers.
    """
    layers, inside = [], set()
    for name, module in model.named_modules():
        if module in inside:
            continue
        if isinstance(module, MergedLayers):
            inside.update(module.modules())
            layers.append((name, module))
        elif isinstance(module, WEIGHT_LAYERS):
            layers.append((name, module))
    return layers


def _root(tensor):
    """The tensor that owns ``tensor``'s memory (itself, or its base)."""
    return tensor if tensor._base is None else tensor._base


class SpikeSources:
    """Neuron outputs, remembered for as long as their memory lives.

    An output is remembered by the tensor that owns its memory (the output
    itself, or the base it is a view of: a view such as a multi-step
    neuron's reshaped steps may be dropped while a reshape of it, the
    attention's heads say, lives on) and by where it lies in that memory.
    An entry is dropped when that tensor is freed, so a later tensor at the
    same address is never mistaken for it. A neuron output that was
    modified in place afterwards is no longer found.
    """

    def __init__(self):
        # id(root) -> (ref(root), [(offset, shape, stride, version, neuron,
        #                            payload), ...])
        self._roots = {}

    def add(self, output, neuron, payload=None):
        """Remember ``output`` as fired by ``neuron``, with ``payload``."""
        if output.is_inference():
            raise RuntimeError(
                'the spikes of a model run under torch.inference_mode() '
                'cannot be followed (inference tensors keep neither their '
                'views\' base nor a version counter): run it under '
                'torch.no_grad()')
        root = _root(output)
        key = id(root)
        if key not in self._roots:
            self._roots[key] = (weakref.ref(root), [])
            weakref.finalize(root, self._roots.pop, key, None)
        self._roots[key][1].append(
            (output.storage_offset(), output.shape, output.stride(),
             output._version, neuron, payload))

    def lookup(self, x):
        """The neuron that fired ``x`` (or the output ``x`` is a reshape
        of) and its payload.

        A tensor counts if it is the neuron's output or a reshape of it
        that reads the same memory in the same order (what ``view`` or
        ``reshape`` without a copy gives, whatever the memory format), so
        that a payload shaped as the output can be reshaped alike, and if
        that memory was not modified in place since the neuron fired.

        Args:
            x (Tensor): A layer's input.

        Returns:
            tuple | None: ``(neuron, payload, output_shape)``, or ``None``
            when ``x`` is not a neuron output.
        """
        root = _root(x)
        found = self._roots.get(id(root))
        if found is None or found[0]() is not root:
            return None
        for offset, shape, stride, version, neuron, payload in reversed(
                found[1]):
            if (offset != x.storage_offset() or version != x._version
                    or shape.numel() != x.numel()):
                continue
            if x.shape == shape and x.stride() == stride:
                return neuron, payload, shape
            try:
                with torch.no_grad():
                    same_order = root.as_strided(shape, stride,
                                                 offset).view(x.shape)
            except RuntimeError:  # not a reshape without a copy
                continue
            if same_order.stride() == x.stride():
                return neuron, payload, shape
        return None

    def clear(self):
        self._roots.clear()


class SpikeKind(NamedTuple):
    """What a row of counts of no neuron is reported with (integer inputs
    of a model without a neuron of norm 1: ``D = 1``, ``T = 1``)."""

    max_level: int = 1
    time_steps: int = 1


class SpikeRead(NamedTuple):
    """What :meth:`SpikeInputs.read` found in a tensor that holds spikes.

    Attributes:
        counts (Tensor | None): The integer counts ``k``, shaped as the
            tensor (its dtype); None for a neuron's output, whose payload
            holds what the tool stored for it.
        norm (float): Their divisor: the tensor is ``counts / norm``.
        neuron (SpikingNeuron | SpikeKind): The neuron whose output it is,
            or, when it is made from outputs, the model's neuron of that
            norm it is reported with (:meth:`SpikeInputs.neuron_of_norm`).
        payload: What the tool stored with that neuron's output
            (:meth:`SpikeInputs.fired`), reshaped by the caller; None when
            the tensor is made from outputs.
        output_shape (torch.Size | None): The shape of the neuron output
            the payload belongs to (None with no payload).
    """

    counts: torch.Tensor
    norm: float
    neuron: object
    payload: object
    output_shape: object


class LazyRead(NamedTuple):
    """:meth:`SpikeInputs.read_lazily`: the answer as tensors, read later.

    Attributes:
        total (Tensor | float): ``sum(k)`` in float64 (0 if not spikes).
        is_spikes (Tensor | bool): Whether the input holds spikes.
        norm_index (Tensor | int): Index into :attr:`SpikeInputs.norms` of
            the norm found (meaningless if not spikes).
        neuron (SpikingNeuron | None): The neuron whose output the input
            is, when known by identity.
    """

    total: object
    is_spikes: object
    norm_index: object
    neuron: object


class SpikeInputs:
    """The rule of this module for one model, with its neurons' outputs.

    Tools call :meth:`fired` from every neuron's forward hook (with a
    payload of their own: a count, the binary maps) and ask :meth:`read`
    (or :meth:`read_lazily`) of each input they charge or run.

    Args:
        model (nn.Module): The model; its neurons' norms are the candidate
            norms.
    """

    def __init__(self, model):
        neurons = [neuron for _, neuron in spiking_neurons(model)]
        #: 1 and the distinct norms of the model's neurons, ascending.
        self.norms = sorted({1.} | {float(neuron.norm) for neuron in neurons})
        # Per norm, the neuron whose max_level (then time_steps) is the
        # largest: whose D and T a tensor made from outputs is reported
        # with.
        self._representative = {}
        for neuron in neurons:
            norm = float(neuron.norm)
            best = self._representative.get(norm)
            if best is None or (neuron.max_level, neuron.time_steps) > (
                    best.max_level, best.time_steps):
                self._representative[norm] = neuron
        # x * n integral implies x * (m n) integral: with integer norms the
        # values are read once, at their least common multiple, and at each
        # norm by the divisibility of those counts. Sums of k / n are exact
        # in floating point for n a power of two: no tolerance needed.
        self._lcm = math.lcm(*map(int, self.norms)) if all(
            norm.is_integer() for norm in self.norms) else None
        self._exact = self._lcm is not None and not self._lcm & (self._lcm -
                                                                 1)
        self._sources = SpikeSources()
        self._last_norm = None

    def neuron_of_norm(self, norm):
        """The model's neuron of ``norm`` with the largest ``max_level``
        (then ``time_steps``): the ``D`` and ``T`` reported for an input
        made from outputs of that norm (a :class:`SpikeKind` of ``D = T =
        1`` for integers in a model without a neuron of norm 1)."""
        return self._representative.get(float(norm), SpikeKind())

    def fired(self, neuron, output, payload=None):
        """Remember ``output`` as ``neuron``'s, with ``payload``."""
        self._sources.add(output, neuron, payload)
        self._last_norm = float(neuron.norm)

    def new_forward(self, *unused):
        """Start a forward of the model: no neuron has fired in it yet (a
        forward pre-hook of the model's root calls this)."""
        self._last_norm = None

    def clear(self):
        self._sources.clear()
        self._last_norm = None

    def _candidates(self):
        """Indices into :attr:`norms` in the order they are tried."""
        order = list(range(len(self.norms)))
        if self._last_norm is not None:
            first = self.norms.index(self._last_norm)
            order.remove(first)
            order.insert(0, first)
        return order

    @staticmethod
    def _counts(x, norm, exact=False):
        """``round(x * norm)`` and whether it is ``x * norm`` and
        non-negative (a bool tensor: no synchronisation)."""
        scaled = x * norm
        counts = torch.round(scaled)
        if exact:
            close = scaled == counts
        else:
            tol = _ULPS * torch.finfo(x.dtype).eps
            close = (scaled - counts).abs_() <= tol * counts.abs().clamp(
                min=1)
        return counts, close.all() & (counts.amin() >= 0)

    def _tries(self, x):
        """Per candidate norm, in the order tried: ``(index, fits, total,
        counts)``, ``fits`` a bool tensor, ``total`` the float64 sum of the
        counts at that norm, ``counts()`` giving them; no synchronisation.
        ``x`` is not empty."""
        if self._lcm is None:
            tries = []
            for index in self._candidates():
                counts, fits = self._counts(x, self.norms[index])
                tries.append((index, fits, counts.sum(dtype=torch.float64),
                              lambda counts=counts: counts))
            return tries
        counts, fits = self._counts(x, self._lcm, self._exact)
        total = counts.sum(dtype=torch.float64)
        tries = []
        for index in self._candidates():
            ratio = round(self._lcm / self.norms[index])
            if ratio == 1:
                # it fits here if it fits at any norm: none after it wins
                tries.append((index, fits, total, lambda: counts))
                break
            divisible = (torch.remainder(counts, ratio) == 0).all()
            tries.append((index, fits & divisible, total / ratio,
                          lambda ratio=ratio: counts / ratio))
        return tries

    def read(self, x):
        """Whether ``x`` holds spikes, and their counts (synchronises).

        Args:
            x (Tensor): A layer's input.

        Returns:
            SpikeRead | None: The counts, or None for real values.
        """
        found = self._sources.lookup(x)
        if found is not None:
            neuron, payload, shape = found
            return SpikeRead(None, float(neuron.norm), neuron, payload, shape)
        if not x.is_floating_point() or not x.numel():
            return None
        for index, fits, _, counts in self._tries(x.detach()):
            if bool(fits):
                norm = self.norms[index]
                return SpikeRead(counts(), norm, self.neuron_of_norm(norm),
                                 None, None)
        return None

    def read_lazily(self, x):
        """:meth:`read` without synchronising: the answer as tensors.

        For a neuron's output the payload stored with it (:meth:`fired`)
        must be its ``sum(k)``.

        Args:
            x (Tensor): A layer's input.

        Returns:
            LazyRead: The total count, whether spikes, the norm's index.
        """
        found = self._sources.lookup(x)
        if found is not None:
            neuron, total, _ = found
            return LazyRead(total, True, self.norms.index(float(neuron.norm)),
                            neuron)
        if not x.is_floating_point() or not x.numel():
            return LazyRead(0., False, 0, None)
        tries = self._tries(x.detach())
        if len(tries) == 1:
            index, fits, total, _ = tries[0]
            return LazyRead(
                torch.where(fits, total, 0.).to(torch.float64), fits,
                index, None)
        passes = torch.stack([fits for _, fits, _, _ in tries])
        # the first norm in the order tried that fits
        first = torch.argmax(passes.to(torch.uint8))
        index = torch.as_tensor([i for i, _, _, _ in tries],
                                device=x.device)[first]
        is_spikes = passes.any()
        total = torch.where(is_spikes,
                            torch.stack([t for _, _, t, _ in tries])[first],
                            0.).to(torch.float64)
        return LazyRead(total, is_spikes, index, None)
