"""Spike-driven execution: counts sent as binary spikes over virtual steps.

In training and in ordinary evaluation a spiking neuron's output is
``k / norm`` per element, with an integer count ``k`` in ``0..max_level``
(an SFA neuron: ``max_level = D``; a LIF neuron: binary spikes,
``max_level = 1``). On neuromorphic hardware it sends ``k`` binary spikes
over ``max_level`` virtual time steps instead. Inside :class:`SpikeDriven`,
every :class:`~sdt3_mm.models.neurons.spiking_neuron.SpikingNeuron` hands over
its :meth:`~sdt3_mm.models.neurons.spiking_neuron.SpikingNeuron.binary_maps`,
which are checked (each map exactly {0, 1}, one per virtual step, and
their sum over ``norm`` exactly the neuron's output), and every weight
layer whose input holds spikes (the rule of :mod:`.spike_inputs`: integer
counts over a neuron's norm, a neuron's output or maps made from outputs
by upsampling, concatenation or sums) is applied to binary maps one step
at a time and accumulates, its bias added once: a neuron's own maps, or,
for a tensor made from outputs, the maps of its counts (step ``t`` fires
where ``k > t``). Spike products
(:class:`~sdt3_mm.models.layers.spike_contract.SpikeProduct`) run as their
module defines them spike-driven. All of it is done by forward hooks,
which replace the outputs of those layers: the model itself is not
changed, and with ``compare=True`` each layer's own output (on the same
input) is the reference its spike-driven output is compared with.

What still multiplies is reported, with where it happens: weight layers
reading real values (the stem on pixels, the parts after the first of a
:class:`~sdt3_mm.models.layers.spike_contract.MergedLayers` module until
``fold_bn`` merges it, the KD head's ``fc`` on pooled features),
BatchNorms that were not folded (:func:`fold_bn` folds them), and the
constants that blocks declare
(:class:`~sdt3_mm.models.layers.spike_contract.ConstantScales`: the
attention scale, the layer scales until ``fold_bn`` folds them). The
``1 / norm`` of a neuron is a rescale of the weights it feeds and is not
listed.
"""
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

from sdt3_mm.models.layers.spike_contract import (ConstantScales, MergedLayers,
                                                 SpikeProduct)
from sdt3_mm.models.neurons.spiking_neuron import SpikingNeuron
from .spike_inputs import WEIGHT_LAYERS, SpikeInputs, join_name


class SpikeDrivenError(AssertionError):
    """A neuron's binary maps are not binary, or do not add up to its
    output: the model cannot run spike-driven as it stands."""


class SpikeDrivenReport:
    """What a spike-driven run did.

    Attributes:
        binary_maps (int): Binary maps checked and consumed.
        expanded (OrderedDict): Weight layers and attention products
            (``<product>.kv`` for ``v @ k^T``, ``<product>.q`` for the
            product with q) run on binary maps, by name, with the number
            of calls.
        non_additions (OrderedDict): Operations that multiply, by name,
            with the reason.
        layer_errors (OrderedDict): With ``compare=True``: per entry of
            ``expanded``, the largest difference between its spike-driven
            output and its output on the same input (the layer's or the
            product module's own), relative to the largest magnitude of the
            latter (at least 1).
    """

    def __init__(self):
        self.binary_maps = 0
        self.expanded = OrderedDict()
        self.non_additions = OrderedDict()
        self.layer_errors = OrderedDict()

    def max_layer_error(self):
        return max(self.layer_errors.values(), default=0.)


_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d,
                   3: F.conv_transpose3d}


def _apply_weights(layer, x):
    """``layer`` on ``x`` without its bias (conv, deconv or linear)."""
    if isinstance(layer, torch.nn.Linear):
        return F.linear(x, layer.weight)
    if isinstance(layer, torch.nn.modules.conv._ConvTransposeNd):
        transpose = _CONV_TRANSPOSE[len(layer.kernel_size)]
        return transpose(x, layer.weight, None, layer.stride, layer.padding,
                         layer.output_padding, layer.groups, layer.dilation)
    return layer._conv_forward(x, layer.weight, None)


def _add_bias(layer, y):
    if layer.bias is None:
        return y
    if isinstance(layer, torch.nn.Linear):
        return y + layer.bias
    return y + layer.bias.view(-1, *([1] * (y.dim() - 2)))


def check_binary_maps(neuron, output, maps, name=''):
    """Check a neuron's binary maps against its output.

    Args:
        neuron (SpikingNeuron): The neuron.
        output (Tensor): Its output.
        maps (list[Tensor]): ``neuron.binary_maps(output)``.
        name (str): The neuron's name, for the message.

    Raises:
        SpikeDrivenError: Unless there are ``max_level`` maps shaped as the
            output, each exactly 0 or 1 everywhere, whose sum divided by
            ``neuron.norm`` equals the output exactly.
    """
    what = (f'{name or "neuron"} ({type(neuron).__name__}, max_level '
            f'{neuron.max_level}, norm {neuron.norm:g})')
    if len(maps) != neuron.max_level:
        raise SpikeDrivenError(f'{what}: binary_maps gave {len(maps)} maps, '
                               f'one per virtual step expected')
    output = output.detach()
    total = None
    for step, spikes in enumerate(maps):
        if spikes.shape != output.shape:
            raise SpikeDrivenError(
                f'{what}: the binary map of virtual step {step} has shape '
                f'{tuple(spikes.shape)}, the output {tuple(output.shape)}')
        if not bool(((spikes == 0) | (spikes == 1)).all()):
            raise SpikeDrivenError(f'{what}: the map of virtual step {step} '
                                   f'holds values other than 0 and 1')
        total = spikes if total is None else total + spikes
    rebuilt = total / neuron.norm
    if not torch.equal(rebuilt, output):
        diff = (rebuilt - output).abs().max().item()
        raise SpikeDrivenError(
            f'{what}: its binary maps summed over norm differ from its '
            f'output by up to {diff:.3g} (the output is not an integer in '
            f'0..{neuron.max_level} over {neuron.norm:g}, or the maps do not '
            f'add up to it)')


class SpikeDriven:
    """Run a model spike-driven: a context manager of forward hooks.

    Example::

        with SpikeDriven(model, compare=True) as report:
            out = model(inputs)
        print(report.non_additions, report.max_layer_error())

    The model must be in evaluation mode, where every neuron, weight layer
    and attention product is called as a module (so that its hooks run).
    Leaving the block removes every hook; the model is never modified.

    Args:
        model (nn.Module): A model made of :class:`SpikingNeuron` modules
            and torch weight layers (any of ours, whole detectors and
            segmentors included; any neuron type that implements the
            contract).
        compare (bool): Also record, per expanded layer and attention
            product, the difference between its spike-driven output and
            its own output, in ``layer_errors``.
    """

    def __init__(self, model, compare=False):
        self.model = model
        self.compare = compare
        self.report = SpikeDrivenReport()
        self._inputs = SpikeInputs(model)
        self._handles = []

    def __enter__(self):
        if self._handles:
            raise RuntimeError('SpikeDriven: already entered')
        try:
            self._register()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self.report

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._inputs.clear()

    def _hook(self, module, hook):
        self._handles.append(module.register_forward_hook(hook))

    def _register(self):
        # The parts of a merged module after its first read real values
        # until fold_bn merges it: say so where they are reported.
        merged_in = {}
        for name, module in self.model.named_modules():
            if isinstance(module, MergedLayers):
                for part in module.modules():
                    if part is not module:
                        merged_in[part] = (name, type(module).__name__)
        self._handles.append(
            self.model.register_forward_pre_hook(self._inputs.new_forward))
        for name, module in self.model.named_modules():
            if isinstance(module, SpikingNeuron):
                self._hook(module, self._neuron_hook(name))
            elif isinstance(module, SpikeProduct):
                self._hook(module, self._product_hook(name))
            elif isinstance(module, _BatchNorm):
                self._hook(
                    module,
                    self._note(
                        name, 'BatchNorm (a multiply-add per element; '
                        'fold_bn folds it)'))
            elif isinstance(module, WEIGHT_LAYERS):
                self._hook(module,
                           self._layer_hook(name, merged_in.get(module)))
            if isinstance(module, ConstantScales):
                self._hook(module, self._scales_hook(name))

    def _note(self, name, reason):

        def hook(module, inputs, output):
            self.report.non_additions[name] = reason

        return hook

    def _scales_hook(self, name):

        def hook(module, inputs, output):
            for scale in module.constant_scales():
                self.report.non_additions[join_name(
                    name, scale.name)] = scale.description

        return hook

    def _neuron_hook(self, name):

        def hook(neuron, inputs, output):
            maps = list(neuron.binary_maps(output.detach()))
            check_binary_maps(neuron, output, maps, name)
            self.report.binary_maps += len(maps)
            self._inputs.fired(neuron, output, maps)

        return hook

    def _spike_maps(self, x):
        """The binary maps behind ``x``, shaped like ``x``, and their norm;
        ``None`` if ``x`` holds real values."""
        read = self._inputs.read(x)
        if read is None:
            return None
        if read.payload is not None:  # a neuron's own maps
            maps = read.payload
            if read.output_shape != x.shape:
                maps = [m.reshape(x.shape) for m in maps]
            return maps, read.norm
        # Made from outputs (upsampled, summed...): step t fires where k > t.
        steps = max(1, int(read.counts.max()))
        maps = [(read.counts > step).to(x.dtype) for step in range(steps)]
        return maps, read.norm

    def _record(self, name, spike_driven, reference):
        self.report.expanded[name] = self.report.expanded.get(name, 0) + 1
        if self.compare:
            reference = reference.detach()
            scale = reference.abs().max().clamp(min=1)
            error = ((spike_driven - reference).abs().max() / scale).item()
            self.report.layer_errors[name] = max(
                error, self.report.layer_errors.get(name, 0.))

    def _layer_hook(self, name, merged_in=None):
        if merged_in is None:
            real = 'reads real values (MAC)'
        else:
            block, kind = merged_in
            real = (f'reads the real output of the part before it inside '
                    f'{block} ({kind}): MAC until fold_bn merges it into '
                    f'one layer')

        def hook(layer, inputs, output):
            found = self._spike_maps(inputs[0])
            if found is None:
                self.report.non_additions[name] = real
                return None
            maps, norm = found
            accumulated = _apply_weights(layer, maps[0])
            for spikes in maps[1:]:
                accumulated = accumulated + _apply_weights(layer, spikes)
            y = _add_bias(layer, accumulated / norm)
            self._record(name, y, output)
            return y

        return hook

    def _product_hook(self, name):

        def hook(product, inputs, output):
            operands = inputs[:len(product.operands)]
            found = [self._spike_maps(t) for t in operands]
            if any(f is None for f in found):
                self.report.non_additions[name] = (
                    'product on real values (MAC)')
                return None
            values = product.spike_driven([f[0] for f in found],
                                          [f[1] for f in found])
            # The reference of each partial product: the same definition
            # on the operands themselves (one "map" each, norm 1); of the
            # last, the module's own output.
            references = product.spike_driven(
                [[t] for t in operands],
                [1.] * len(operands)) if self.compare else {}
            keys = list(values)
            for key in keys:
                reference = output if key == keys[-1] else references.get(
                    key)
                self._record(join_name(name, key), values[key], reference)
            return values[keys[-1]]

        return hook
