"""Spike Firing Approximation (SFA) neuron."""
import torch
from torch import nn

from sdt3_mm.registry import MODELS

_ROUNDING = ('half_even', 'half_up')
_BOUNDS = ('closed', 'open')


def _quantise(x, max_level, rounding):
    x = torch.clamp(x, 0, max_level)
    if rounding == 'half_even':
        return torch.round(x)
    return torch.floor(x + 0.5)


class _SFAFunction(torch.autograd.Function):
    """Integer firing with a straight-through gradient inside the bounds.

    Only a boolean mask (one byte per element) is saved for backward, so
    the float membrane potential is freed as soon as the forward ends.
    """

    @staticmethod
    def forward(ctx, x, max_level, norm, rounding, closed):
        if closed:
            mask = (x >= 0) & (x <= max_level)
        else:
            mask = (x > 0) & (x < max_level)
        ctx.save_for_backward(mask)
        ctx.norm = norm
        return _quantise(x, max_level, rounding) / norm

    @staticmethod
    def backward(ctx, grad_output):
        mask, = ctx.saved_tensors
        return grad_output * mask / ctx.norm, None, None, None, None


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
        if int(D) != D or D < 1:
            raise ValueError(f'SFANeuron: D must be a positive integer, '
                             f'got {D!r}')
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
            return _SFAFunction.apply(x, self.D, self.norm, self.rounding,
                                      self.bounds == 'closed')
        return _quantise(x, self.D, self.rounding) / self.norm

    def extra_repr(self):
        return (f'D={self.D}, norm={self.norm:g}, rounding={self.rounding}, '
                f'bounds={self.bounds}')
