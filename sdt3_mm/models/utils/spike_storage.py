"""Saving spikes for backward in one byte per element.

A layer that reads spikes saves its input for the backward pass (a conv
needs it for the weight gradient), and PyTorch keeps that input as the
float tensor the neuron produced: four bytes per element for a value that
is an integer count ``k`` in ``0..D`` divided by ``norm``. The SFA neuron
already keeps one byte per element for its own backward, a *spike code*:
``k`` in the low seven bits and its straight-through mask in the top bit.
Inside :func:`compact_spike_storage`, any saved tensor that is a neuron's
output (or a view of one, such as the attention's per-head split) is
stored as a reference to that code instead, and decoded in backward by the
same division the neuron did, so gradients are bit for bit the same.
"""
import weakref
from contextlib import contextmanager

import torch

#: The straight-through mask's bit in a spike code.
MASK_SHIFT = 7
MASK_BIT = 1 << MASK_SHIFT
#: The bits of the spike count ``k``; ``D`` can be at most this.
LEVEL_BITS = MASK_BIT - 1

# id(spike tensor) -> (weak reference to it, its code, its divisor); an
# entry goes when its tensor does, so a recycled id is never mistaken.
_codes = {}
_depth = 0


def storing_spikes():
    """Whether a :func:`compact_spike_storage` context is active."""
    return _depth > 0


def register_spikes(spikes, code, norm):
    """Record that ``spikes == (code & LEVEL_BITS) / norm``, for layers that
    save ``spikes`` inside :func:`compact_spike_storage`.

    Args:
        spikes (Tensor): The neuron's output.
        code (Tensor): Its spike code (uint8, same shape and strides).
        norm (float): The divisor of the count.
    """
    key = id(spikes)
    _codes[key] = (weakref.ref(spikes), code, norm)
    weakref.finalize(spikes, _codes.pop, key, None)


class _CompactSpikes:
    """A saved spike tensor, as its neuron's code and its own view."""

    def __init__(self, tensor, code, norm):
        self.code = code
        self.norm = norm
        self.dtype = tensor.dtype
        self.view = (tensor.size(), tensor.stride(), tensor.storage_offset())

    def decode(self):
        spikes = (self.code & LEVEL_BITS).to(self.dtype).div_(self.norm)
        return spikes.as_strided(*self.view)


def _pack(tensor):
    base = tensor if tensor._base is None else tensor._base
    entry = _codes.get(id(base))
    if entry is None or entry[0]() is not base:
        return tensor
    return _CompactSpikes(tensor, entry[1], entry[2])


def _unpack(saved):
    return saved.decode() if isinstance(saved, _CompactSpikes) else saved


@contextmanager
def spike_storage_paused():
    """Inside, neurons save plain masks and register nothing: for code whose
    saved tensors another saved-tensor hook handles (checkpointing)."""
    global _depth
    depth, _depth = _depth, 0
    try:
        yield
    finally:
        _depth = depth


@contextmanager
def compact_spike_storage():
    """Save the spikes read by layers in this context as one-byte codes.

    Used around a spiking network's forward; inside ``torch.compile`` it
    does nothing (the compiler plans its own saved tensors).
    """
    global _depth
    if torch.compiler.is_compiling():
        yield
        return
    _depth += 1
    try:
        with torch.autograd.graph.saved_tensors_hooks(_pack, _unpack):
            yield
    finally:
        _depth -= 1
