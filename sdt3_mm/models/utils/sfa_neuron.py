"""Spike Firing Approximation (SFA) neuron."""
import torch
from torch import nn

from sdt3_mm.registry import MODELS
from .spike_storage import (LEVEL_BITS, MASK_BIT, MASK_SHIFT, register_spikes,
                            storing_spikes)

_ROUNDING = ('half_even', 'half_up')
_BOUNDS = ('closed', 'open')


def _round_(x, rounding):
    if rounding == 'half_even':
        return x.round_()
    return x.add_(0.5).floor_()


def _quantise(x, max_level, rounding):
    """``round(clamp(x, 0, max_level))``, as a new tensor."""
    return _round_(torch.clamp(x, 0, max_level), rounding)


class _SFAFunction(torch.autograd.Function):
    """Integer firing with a straight-through gradient inside the bounds.

    Returns the spikes and what is saved for backward, one byte per
    element: the boolean gradient mask, or with ``encode`` the spike code
    (uint8: the count in the low bits, the mask in :data:`MASK_BIT`), which
    a layer reading the spikes can save in their place (see
    :mod:`.spike_storage`). The float membrane potential is freed as soon
    as the forward ends.
    """

    @staticmethod
    def forward(ctx, x, max_level, norm, rounding, closed, encode):
        level = torch.clamp(x, 0, max_level)
        if closed:
            inside = level == x
        else:
            inside = (x > 0) & (x < max_level)
        _round_(level, rounding)
        if encode:
            saved = level.to(torch.uint8)
            saved.add_(inside.view(torch.uint8).mul_(MASK_BIT))
        else:
            saved = inside
        ctx.save_for_backward(saved)
        ctx.mark_non_differentiable(saved)
        ctx.norm = norm
        return level.div_(norm), saved

    @staticmethod
    def backward(ctx, grad_output, grad_saved):
        inside, = ctx.saved_tensors
        if inside.dtype == torch.uint8:
            inside = inside >> MASK_SHIFT
        return ((grad_output * inside).div_(ctx.norm), None, None, None, None,
                None)


@MODELS.register_module()
class SFANeuron(nn.Module):
    """The SFA neuron of Spike-driven Transformer V3.

    Forward (training and evaluation alike)::

        s = round(clamp(u, 0, D)) / norm

    An integer ``k`` in ``0..D`` stands for ``k`` binary spikes over ``D``
    virtual time steps; ``norm`` is ``D`` for hidden neurons and 1 for the
    neuron in front of a classifier, which sends the raw integer.

    Backward is straight-through: the gradient is passed (divided by
    ``norm``) where ``u`` lies inside the bounds and zeroed elsewhere.

    Args:
        D (int): Maximum integer (virtual time steps). Defaults to 4.
        norm (float, optional): Divisor of the output. Defaults to ``D``.
        rounding (str): ``'half_even'`` (``torch.round``, the base family)
            or ``'half_up'`` (``floor(x + 0.5)``, the large family).
            Defaults to ``'half_even'``.
        bounds (str): Where the straight-through gradient passes:
            ``'closed'`` for ``0 <= u <= D`` (base family) or ``'open'``
            for ``0 < u < D`` (large family). Defaults to ``'closed'``.
    """

    def __init__(self, D=4, norm=None, rounding='half_even', bounds='closed'):
        super().__init__()
        if int(D) != D or not 1 <= D <= LEVEL_BITS:
            raise ValueError(f'SFANeuron: D must be an integer in '
                             f'1..{LEVEL_BITS} (a spike count and its '
                             f'gradient mask share one byte), got {D!r}')
        if rounding not in _ROUNDING:
            raise ValueError(f'SFANeuron: rounding must be one of '
                             f'{_ROUNDING}, got {rounding!r}')
        if bounds not in _BOUNDS:
            raise ValueError(f'SFANeuron: bounds must be one of {_BOUNDS}, '
                             f'got {bounds!r}')
        self.D = int(D)
        self.norm = float(D if norm is None else norm)
        if self.norm <= 0:
            raise ValueError(f'SFANeuron: norm must be positive, got {norm!r}')
        self.rounding = rounding
        self.bounds = bounds

    def forward(self, x):
        if torch.is_grad_enabled() and x.requires_grad:
            encode = storing_spikes()
            spikes, saved = _SFAFunction.apply(x, self.D, self.norm,
                                               self.rounding,
                                               self.bounds == 'closed', encode)
            if encode:
                register_spikes(spikes, saved, self.norm)
            return spikes
        return _quantise(x, self.D, self.rounding).div_(self.norm)

    def extra_repr(self):
        return (f'D={self.D}, norm={self.norm:g}, rounding={self.rounding}, '
                f'bounds={self.bounds}')
