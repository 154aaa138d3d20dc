"""Which tensors reaching a weight layer are spikes, and from which neuron.

Spike-driven execution and spike counting both ask of a layer's input:
is it the output of a spiking neuron (spikes), or a real value (the
pixels in front of the stem, a BN output inside an unfolded projection)?
The answer is read from the tensors themselves, not from the model's
code: every neuron output is remembered by identity while it is alive,
and so are reshapes of it (the flattening before a head's FC, the split
into attention heads), including when the output is itself a view (a
multi-step neuron's steps stacked and reshaped). A neuron output that was
modified in place afterwards is no longer taken for spikes. Any model made
of :class:`~sdt3_mm.models.utils.spiking_neuron.SpikingNeuron` modules and
torch's weight layers is covered, MMDetection's heads with neurons in
place of ReLUs included.
"""
import weakref

import torch
from torch import nn

from sdt3_mm.models.utils.spike_layers import StackedConvBN1d

WEIGHT_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear,
                 nn.ConvTranspose2d)


def join_name(prefix, name):
    """``prefix.name``, or ``name`` under the root module (prefix ``''``)."""
    return f'{prefix}.{name}' if prefix else name


def weight_layers(model):
    """The weight layers of ``model`` as deployed, by name.

    A :class:`StackedConvBN1d` counts as one layer: with its norms folded
    its two convs are one linear map.

    Args:
        model (nn.Module): The model.

    Returns:
        list[tuple[str, nn.Module]]: Names and layers.
    """
    layers, inside = [], set()
    for name, module in model.named_modules():
        if module in inside:
            continue
        if isinstance(module, StackedConvBN1d):
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
    same address is never mistaken for it.
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
