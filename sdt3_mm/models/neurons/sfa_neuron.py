"""Spike Firing Approximation (SFA) neuron.

The neuron's maths is written once, in the three functions below (the
level, the window the straight-through gradient passes, the rounding);
the eager autograd function and the plain operations tracers see are both
made of them, so the two paths cannot drift apart.
"""
import functools

import torch

from sdt3_mm.registry import MODELS
from .spiking_neuron import COUNT_BITS, FLAG_SHIFT, SpikingNeuron, _tracing

_ROUNDING = ('half_even', 'half_up')
_BOUNDS = ('closed', 'open')


def _level(x, max_level):
    """The membrane potential clamped to the counts' range ``[0, D]``."""
    return torch.clamp(x, 0, max_level)


def _gradient_window(x, max_level, bounds, level=None):
    """Where the straight-through gradient passes (a boolean mask).

    Args:
        x (Tensor): The membrane potential.
        max_level (int): ``D``.
        bounds (str): ``'closed'``: ``0 <= x <= D``; ``'open'``:
            ``0 < x < D``.
        level (Tensor, optional): ``_level(x, max_level)`` where it is at
            hand: the closed window is where the clamp left ``x`` as it
            was, one comparison instead of three.
    """
    if bounds == 'closed':
        if level is not None:
            return level == x
        return (x >= 0) & (x <= max_level)
    return (x > 0) & (x < max_level)


def _round(x, rounding, inplace=False):
    """``x`` rounded to integers, half to even (``torch.round``) or half up
    (``floor(x + 0.5)``); ``inplace`` overwrites ``x`` (fewer temporaries
    in training)."""
    if rounding == 'half_even':
        return x.round_() if inplace else torch.round(x)
    return x.add_(0.5).floor_() if inplace else torch.floor(x + 0.5)


def check_sfa_settings(owner, level_name, max_level, norm, rounding,
                       bounds):
    """Check an SFA neuron's settings, the one definition of their ranges.

    Args:
        owner (str): Who checks, the start of each message.
        level_name (str): The name ``max_level`` has for ``owner``
            (``'D'``).
        max_level (int): ``D``: an integer in ``1..127`` (a count and its
            gradient mask share one byte).
        norm (float, optional): Divisor of the output, positive; None for
            the default (``D``).
        rounding (str): One of ``'half_even'``, ``'half_up'``.
        bounds (str): One of ``'closed'``, ``'open'``.

    Returns:
        int | float: ``max_level``, checked.

    Raises:
        ValueError: Naming the setting out of range.
    """
    if int(max_level) != max_level or not 1 <= max_level <= COUNT_BITS:
        raise ValueError(f'{owner}: {level_name} must be an integer in '
                         f'1..{COUNT_BITS} (a spike count and its gradient '
                         f'mask share one byte), got {max_level!r}')
    if rounding not in _ROUNDING:
        raise ValueError(f'{owner}: rounding must be one of {_ROUNDING}, '
                         f'got {rounding!r}')
    if bounds not in _BOUNDS:
        raise ValueError(f'{owner}: bounds must be one of {_BOUNDS}, got '
                         f'{bounds!r}')
    if norm is not None and not norm > 0:
        raise ValueError(f'{owner}: norm must be positive, got {norm!r}')
    return max_level


class _SFAFunction(torch.autograd.Function):
    """Eager SFA firing: integer counts, straight-through gradient inside
    the window (:func:`_gradient_window`), divided by ``norm``.

    Returns the spikes and what backward keeps, one byte per element: with
    ``encode`` the spike code (uint8: the count in the low bits, the
    gradient window in the top bit), else the boolean window; nothing when
    ``x`` needs no gradient. The float membrane potential is freed as soon
    as the forward ends.
    """

    @staticmethod
    def forward(ctx, x, max_level, norm, rounding, bounds, encode=True):
        level = _level(x, max_level)
        if not ctx.needs_input_grad[0]:
            # No backward will run (evaluation under no_grad): no window.
            ctx.mark_non_differentiable(level)
            return _round(level, rounding, inplace=True).div_(norm), None
        window = _gradient_window(x, max_level, bounds, level)
        _round(level, rounding, inplace=True)
        if encode:
            code = level.to(torch.uint8)
            code.bitwise_or_(
                window.to(torch.uint8).bitwise_left_shift_(FLAG_SHIFT))
        else:
            code = window
        ctx.save_for_backward(code)
        ctx.mark_non_differentiable(code)
        ctx.norm = norm
        return level.div_(norm), code

    @staticmethod
    def backward(ctx, grad_output, grad_code):
        code, = ctx.saved_tensors
        if code.dtype == torch.uint8:
            code = code >> FLAG_SHIFT
        window = code.to(grad_output.dtype)
        return ((grad_output * window).div_(ctx.norm), None, None, None, None,
                None)


@functools.lru_cache(maxsize=None)
def _fused_kernels():
    """The module of the fused Triton kernels (:mod:`.sfa_triton`), or
    None where triton does not import; imported on the first CUDA tensor
    fired, so that ``import sdt3_mm`` never imports triton."""
    try:
        from . import sfa_triton
    except ImportError:
        return None
    return sfa_triton


@MODELS.register_module()
class SFANeuron(SpikingNeuron):
    """The SFA neuron of Spike-driven Transformer V3.

    Forward (training and evaluation alike)::

        s = round(clamp(u, 0, D)) / norm

    An integer ``k`` in ``0..D`` stands for ``k`` binary spikes over ``D``
    virtual time steps; ``norm`` is ``D`` for hidden neurons and 1 for the
    neuron in front of a classifier, which sends the raw integer. The
    neuron is stateless (:attr:`time_steps` is 1).

    Backward is straight-through: the gradient is passed (divided by
    ``norm``) where ``u`` lies inside the bounds and zeroed elsewhere; it
    keeps one byte per element (in training the spike code, see
    :class:`SpikingNeuron`). Under a tracer or compiler the same values
    and gradient come from plain tensor operations built of the same
    functions.

    On CUDA tensors (fp32, fp16, bf16) the neuron fires through fused
    Triton kernels (:mod:`.sfa_triton`) where triton imports: one pass over
    memory in each direction instead of several elementwise kernels, with
    the same bits as the eager path (values, codes, gradients). Elsewhere
    (the CPU, other dtypes, tracers and compilers, no triton) it fires
    eagerly.

    Args:
        D (int): Maximum integer (virtual time steps), at most 127 (a
            count and its gradient mask share one byte). Defaults to 4.
        norm (float, optional): Divisor of the output. Defaults to ``D``.
        rounding (str): ``'half_even'`` (``torch.round``, the base family)
            or ``'half_up'`` (``floor(x + 0.5)``, the large family).
            Defaults to ``'half_even'``.
        bounds (str): Where the straight-through gradient passes:
            ``'closed'`` for ``0 <= u <= D`` (base family) or ``'open'``
            for ``0 < u < D`` (large family). Defaults to ``'closed'``.
        inplace (bool): Unused; see :class:`SpikingNeuron`. Defaults to
            False.
        fused (bool): Fire CUDA tensors through the fused Triton kernels
            where they apply (see above); False always fires eagerly (to
            compare the two, or to rule the kernels out). Not saved in the
            state dict. Defaults to True.
    """

    def __init__(self,
                 D=4,
                 norm=None,
                 rounding='half_even',
                 bounds='closed',
                 inplace=False,
                 fused=True):
        super().__init__()
        self.D = int(check_sfa_settings('SFANeuron', 'D', D, norm, rounding,
                                        bounds))
        self.norm = float(D if norm is None else norm)
        self.rounding = rounding
        self.bounds = bounds
        self.fused = bool(fused)

    @property
    def max_level(self):
        return self.D

    def _firing_function(self, x):
        """The fused firing (``sfa_fire_fused``) where it applies to ``x``,
        else the eager ``_SFAFunction.apply``; the same contract."""
        if self.fused and x.is_cuda and not _tracing():
            kernels = _fused_kernels()
            if kernels is not None and x.dtype in kernels.SUPPORTED_DTYPES:
                return kernels.sfa_fire_fused
        return _SFAFunction.apply

    def fire_with_code(self, x):
        return self._firing_function(x)(x, self.D, self.norm, self.rounding,
                                        self.bounds)

    def fire_eager(self, x):
        # The autograd function without the code: one pass fewer than the
        # plain operations' straight-through arithmetic.
        return self._firing_function(x)(x, self.D, self.norm, self.rounding,
                                        self.bounds, False)[0]

    def fire_plain(self, x):
        if self.bounds == 'closed':
            # clamp's own gradient passes on exactly the closed window, so
            # the mask needs no op of its own (nor in exported graphs).
            level = _level(x, self.D)
        else:
            window = _gradient_window(x, self.D, self.bounds)
            level = _level(torch.where(window, x, x.detach()), self.D)
        # level + (round(level) - level) is round(level) exactly (the
        # difference of two floats within a factor of two of each other,
        # or with one of them 0, is exact); the gradient is level's.
        fixed = level.detach()
        return (level + _round(fixed, self.rounding).sub_(fixed)) / self.norm

    def extra_repr(self):
        # fused=True is the default: shown only when turned off.
        fused = '' if self.fused else ', fused=False'
        return (f'D={self.D}, norm={self.norm:g}, rounding={self.rounding}, '
                f'bounds={self.bounds}{fused}')
