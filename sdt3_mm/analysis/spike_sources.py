"""Which tensors reaching a weight layer are spikes, and from which neuron.

Spike-driven execution and spike counting both ask of a layer's input:
is it the output of an SFA neuron (spikes), or a real value (the pixels
in front of the stem, a BN output inside an unfolded projection)? The
answer is read from the tensors themselves, not from the model's code:
every neuron output is remembered by identity while it is alive, and so
are reshaped views of it (the flattening before a head's FC, the split
into attention heads). Any model made of our neurons and torch's weight
layers is covered, MMDetection's heads with neurons in place of ReLUs
included.
"""
import weakref

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


class SpikeSources:
    """Neuron outputs, remembered by identity for as long as they live.

    An entry is dropped when its tensor is freed, so a later tensor at the
    same address is never mistaken for it.
    """

    def __init__(self):
        self._entries = {}

    def add(self, output, neuron, payload=None):
        """Remember ``output`` as fired by ``neuron``, with ``payload``."""
        key = id(output)
        self._entries[key] = (weakref.ref(output), neuron, payload)
        weakref.finalize(output, self._entries.pop, key, None)

    def lookup(self, x):
        """The neuron that fired ``x`` (or the tensor ``x`` is a reshaped
        view of) and its payload.

        Args:
            x (Tensor): A layer's input.

        Returns:
            tuple | None: ``(neuron, payload, source)`` with ``source`` the
            neuron's output tensor (``x`` itself or its base), or ``None``
            when ``x`` is not a neuron output.
        """
        for candidate in (x, x._base):
            # A view counts only as a plain reshape (same elements in the
            # same order), so the payload can be reshaped alike.
            if candidate is None or candidate is not x and not (
                    candidate.numel() == x.numel() and x.is_contiguous()
                    and candidate.is_contiguous()):
                continue
            entry = self._entries.get(id(candidate))
            if entry is not None and entry[0]() is candidate:
                return entry[1], entry[2], candidate
        return None

    def clear(self):
        self._entries.clear()
