"""The SFA neuron fused into Triton kernels, for CUDA tensors.

The eager neuron (:class:`~.sfa_neuron._SFAFunction`) fires as several
elementwise kernels in each direction (clamp, window, round, code, divide;
mask, multiply, divide). Here each direction is one pass over memory:

* forward reads ``x`` once and writes the spikes (in ``x``'s dtype) and,
  when a gradient is needed, the one-byte spike code (the count in the low
  seven bits, the gradient window in bit 7) or the window alone;
* backward reads the gradient and the code once and writes
  ``grad * window / norm``.

The kernels are the eager neuron op for op, in the same arithmetic, so the
results are the same bits (values, codes and gradients, for fp32, fp16
and bf16, NaN, infinities and -0.0 included):

* fp16 and bf16 values are computed in fp32 and rounded to the dtype after
  each operation where torch rounds (torch's ``opmath``);
* the clamp is torch's: compare and select, NaN passed through, -0.0 kept;
* rounding half to even uses ``(v + 2**23) - 2**23``, exact in fp32 for
  ``0 <= v < 2**23`` (levels are at most 127) and the same as
  ``torch.round``; the sign of a zero level is kept as ``torch.round``
  keeps it;
* the division by ``norm`` is what torch does on the tensor's device for a
  tensor divided by a Python number: a correctly rounded division on the
  CPU, a multiplication by the fp32 reciprocal of ``norm`` on CUDA
  (``div_true_kernel_cuda``). The two differ in the last bit for some
  ``norm`` that are not powers of two, so the kernels follow the device.

This module imports triton and is imported only when a CUDA tensor is
fired (see :meth:`~.sfa_neuron.SFANeuron.fire_with_code`), so that
``import sdt3_mm`` never imports triton. On the CPU the kernels run under
Triton's interpreter (``TRITON_INTERPRET=1`` set before this module is
imported), which is how the tests check them without a GPU.
"""
import contextlib

import numpy as np
import torch
import triton
import triton.language as tl

from .sfa_neuron import check_sfa_settings
from .spiking_neuron import FLAG_SHIFT

#: The dtypes the kernels take (the eager neuron takes any float dtype).
SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _block_size(device):
    """Elements per program: 1024 on a GPU (wide vector loads and stores,
    many programs per SM); on the CPU, where only Triton's interpreter runs
    the kernels, 65536 (each program costs the interpreter a pass of numpy
    calls, whatever its size)."""
    return 1024 if device.type == 'cuda' else 65536


@triton.jit
def _to_fp32(v):
    """``v`` in fp32, exactly (bf16 subnormals included)."""
    if v.dtype == tl.bfloat16:
        # A bf16 is the top half of the fp32 of the same value: widen the
        # bits (Triton's interpreter flushes bf16 subnormals to zero in a
        # conversion; this is exact everywhere).
        bits = v.to(tl.uint16, bitcast=True).to(tl.uint32) << 16
        return bits.to(tl.float32, bitcast=True)
    return v.to(tl.float32)


@triton.jit
def _from_fp32(v, dtype: tl.constexpr):
    """``v`` rounded to ``dtype`` to nearest, ties to even, as torch
    rounds (a NaN stays a NaN; its payload is not kept)."""
    if dtype == tl.bfloat16:
        # Rounded on the bits, as c10::BFloat16 does: Triton's interpreter
        # does not round to nearest even in this conversion (the hardware
        # does); this is the same on both.
        bits = v.to(tl.uint32, bitcast=True)
        bits += ((bits >> 16) & 1) + 0x7FFF
        bits = tl.where(v == v, bits >> 16, 0x7FC0)
        return bits.to(tl.uint16).to(tl.bfloat16, bitcast=True)
    return v.to(dtype)


@triton.jit
def _round_half_even(v):
    """``torch.round`` of ``0 <= v <= 127`` (or NaN) in fp32."""
    # Adding 2**23 leaves no fraction bits, so the sum is rounded to an
    # integer half to even (IEEE round to nearest); subtracting it back is
    # exact. A zero level keeps its sign, as torch.round keeps it (the sum
    # would turn -0.0 into +0.0).
    rounded = (v + 8388608.0) - 8388608.0
    return tl.where(v == 0.0, v, rounded)


@triton.jit
def _divide_by_norm(v, norm, inv_norm, BY_RECIPROCAL: tl.constexpr):
    """``v / norm`` as torch computes a tensor divided by a Python number
    on the device (see the module docstring)."""
    if BY_RECIPROCAL:
        return v * inv_norm
    return tl.div_rn(v, norm)


@triton.jit
def _sfa_forward_kernel(x_ptr, spikes_ptr, code_ptr, max_level, norm, inv_norm,
                        numel, HALF_EVEN: tl.constexpr, CLOSED: tl.constexpr,
                        KEEP: tl.constexpr, ENCODE: tl.constexpr,
                        BY_RECIPROCAL: tl.constexpr, BLOCK: tl.constexpr):
    """Spikes of ``x`` and, with ``KEEP``, what backward keeps at
    ``code_ptr``: the spike code with ``ENCODE``, else the window (0 or
    1)."""
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    in_range = offsets < numel
    x_raw = tl.load(x_ptr + offsets, mask=in_range)
    dtype = x_raw.dtype
    x = _to_fp32(x_raw)
    # torch.clamp(x, 0, D), as torch's clamp kernel writes it: a NaN
    # passes through (both comparisons are false) and -0.0 is kept.
    level = tl.where(x < 0.0, 0.0, x)
    level = tl.where(max_level < level, max_level, level)
    if HALF_EVEN:
        rounded = _round_half_even(level)
    else:
        # level.add_(0.5).floor_(): the sum is stored in x's dtype first.
        rounded = tl.floor(_to_fp32(_from_fp32(level + 0.5, dtype)))
    spikes = _divide_by_norm(rounded, norm, inv_norm, BY_RECIPROCAL)
    tl.store(spikes_ptr + offsets, _from_fp32(spikes, dtype), mask=in_range)
    if KEEP:
        if CLOSED:
            # The clamp left x as it was (_gradient_window with level).
            window = level == x
        else:
            window = (x > 0.0) & (x < max_level)
        window = window.to(tl.uint8)
        if ENCODE:
            # level.to(torch.uint8): torch converts NaN to 0; an explicit
            # select, as a float-to-integer conversion of NaN is undefined.
            count = tl.where(rounded == rounded, rounded, 0.0)
            window = count.to(tl.uint8) | (window << 7)
        tl.store(code_ptr + offsets, window, mask=in_range)


@triton.jit
def _sfa_backward_kernel(grad_ptr, code_ptr, grad_in_ptr, norm, inv_norm,
                         numel, WINDOW_SHIFT: tl.constexpr,
                         BY_RECIPROCAL: tl.constexpr, BLOCK: tl.constexpr):
    """``grad * window / norm``; the window is bit ``WINDOW_SHIFT`` of the
    bytes at ``code_ptr`` (7 in a spike code, 0 in a kept window)."""
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    in_range = offsets < numel
    grad_raw = tl.load(grad_ptr + offsets, mask=in_range)
    dtype = grad_raw.dtype
    code = tl.load(code_ptr + offsets, mask=in_range)
    window = (code >> WINDOW_SHIFT).to(tl.float32)
    # (grad * window).div_(norm): a product, not a select, so that an
    # infinite or NaN gradient outside the window gives NaN as in eager.
    passed = _to_fp32(_from_fp32(_to_fp32(grad_raw) * window, dtype))
    grad_in = _divide_by_norm(passed, norm, inv_norm, BY_RECIPROCAL)
    tl.store(grad_in_ptr + offsets, _from_fp32(grad_in, dtype), mask=in_range)


def _dense(x):
    """``x`` itself where its elements fill their storage span without
    gaps or overlaps, in any order (contiguous, channels_last, permuted),
    else a copy laid out as ``torch.empty_like(x)``; the kernels run over
    the flat span, and outputs made with ``torch.empty_like`` of the
    result share its strides."""
    like = torch.empty_like(x)
    # empty_like keeps the strides of exactly such tensors.
    return x if like.stride() == x.stride() else like.copy_(x)


def _division_args(norm, device):
    """``norm`` and its fp32 reciprocal as the kernels take them, and
    whether the device's division multiplies by the reciprocal."""
    norm32 = np.float32(norm)
    return (float(norm32), float(np.float32(1) / norm32),
            device.type == 'cuda')


def _launch(kernel, numel, device, *args, **constants):
    """Run ``kernel`` over ``numel`` elements (nothing for none) on
    ``device``."""
    if not numel:
        return
    block = _block_size(device)
    # Triton launches on the current CUDA device, not on its tensors'.
    on_device = (
        torch.cuda.device(device)
        if device.type == 'cuda' else contextlib.nullcontext())
    with on_device:
        kernel[(triton.cdiv(numel, block), )](
            *args, numel, BLOCK=block, **constants)


def _check_arguments(x, max_level, norm, rounding, bounds):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f'sfa_fire_fused: x must be a tensor, got '
                        f'{type(x).__name__}')
    if x.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f'sfa_fire_fused: x must be one of '
                        f'{SUPPORTED_DTYPES}, got {x.dtype} (the eager '
                        f'neuron takes it: SFANeuron(fused=False))')
    check_sfa_settings('sfa_fire_fused', 'max_level', max_level, norm,
                       rounding, bounds)


class _FusedSFAFunction(torch.autograd.Function):
    """:class:`~.sfa_neuron._SFAFunction` in two Triton kernels, one per
    direction; the same contract and the same bits."""

    @staticmethod
    def forward(ctx, x, max_level, norm, rounding, bounds, encode=True):
        x = _dense(x)
        spikes = torch.empty_like(x)
        # No backward will run (evaluation under no_grad): nothing kept.
        keep = ctx.needs_input_grad[0]
        code = torch.empty_like(x, dtype=torch.uint8) if keep else None
        norm32, inv_norm, by_reciprocal = _division_args(norm, x.device)
        _launch(
            _sfa_forward_kernel,
            x.numel(),
            x.device,
            x,
            spikes,
            spikes if code is None else code,  # not written unless kept
            float(max_level),
            norm32,
            inv_norm,
            HALF_EVEN=rounding == 'half_even',
            CLOSED=bounds == 'closed',
            KEEP=keep,
            ENCODE=encode,
            BY_RECIPROCAL=by_reciprocal)
        if not keep:
            ctx.mark_non_differentiable(spikes)
            return spikes, None
        if not encode:
            # The kernel wrote 0 or 1 per byte: a boolean tensor's bytes.
            code = code.view(torch.bool)
        ctx.save_for_backward(code)
        ctx.mark_non_differentiable(code)
        ctx.norm = norm
        return spikes, code

    @staticmethod
    def backward(ctx, grad_output, grad_code):
        code, = ctx.saved_tensors
        shift = FLAG_SHIFT if code.dtype == torch.uint8 else 0
        code = code.view(torch.uint8)
        if grad_output.stride() != code.stride():
            # Elementwise over the flat span needs both in one layout.
            grad_output = torch.empty_like(
                code, dtype=grad_output.dtype).copy_(grad_output)
        grad_input = torch.empty_like(code, dtype=grad_output.dtype)
        norm32, inv_norm, by_reciprocal = _division_args(ctx.norm, code.device)
        _launch(
            _sfa_backward_kernel,
            code.numel(),
            code.device,
            grad_output,
            code,
            grad_input,
            norm32,
            inv_norm,
            WINDOW_SHIFT=shift,
            BY_RECIPROCAL=by_reciprocal)
        return grad_input, None, None, None, None, None


def sfa_fire_fused(x, max_level, norm, rounding, bounds, encode=True):
    """SFA firing in one Triton kernel per direction.

    The same contract as the eager ``_SFAFunction.apply`` and the same
    bits: spikes ``round(clamp(x, 0, D)) / norm`` in ``x``'s dtype and
    layout, and what backward keeps (one byte per element), or None when
    ``x`` needs no gradient.

    Args:
        x (Tensor): Membrane potentials: fp32, fp16 or bf16, on a CUDA
            device (or on the CPU under ``TRITON_INTERPRET=1``).
        max_level (int): ``D``, in 1..127.
        norm (float): Divisor of the output, positive.
        rounding (str): ``'half_even'`` or ``'half_up'``.
        bounds (str): ``'closed'`` or ``'open'`` straight-through window.
        encode (bool): Keep the spike code (uint8: the count in the low
            seven bits, the window in bit 7) rather than the boolean
            window. Defaults to True.

    Returns:
        tuple[Tensor, Tensor | None]: The spikes and the code (or window).
    """
    _check_arguments(x, max_level, norm, rounding, bounds)
    return _FusedSFAFunction.apply(x, max_level, norm, rounding, bounds,
                                   encode)
