"""Layers that read spikes and keep the spikes' one-byte code for backward.

A conv or a matmul keeps its input for backward. When that input is a
neuron's output carrying its :class:`~sdt3_mm.models.neurons.SpikeCode` (training
mode, see :func:`~sdt3_mm.models.neurons.spike_code_of`), the layers here keep the
code instead of the float spikes (a quarter of the memory, and the neuron
keeps the same code for its own backward, so the two share one byte per
element) and rebuild the spikes bit for bit in backward. Without a code
(evaluation mode, or spikes from elsewhere) they are the plain layers.

The autograd functions save tensors only through ``ctx.save_for_backward``,
so saved-tensor hooks (``torch.autograd.graph.save_on_cpu``, non-reentrant
``torch.utils.checkpoint``) handle them as any other. The float spikes are
not kept, so PyTorch cannot check their version counter itself: the
functions remember it and raise PyTorch's error in backward if the spikes
were modified in place after they were read. Under autocast the products
run in the autocast dtype, as ``F.conv2d`` and ``torch.matmul`` would.
"""
import weakref

import torch
import torch.nn.functional as F
from torch import nn

from .spike_contract import SpikeProduct
from ..neurons.spiking_neuron import SpikeCode, spike_code_of


def _compute_dtype(x):
    """The dtype autocast would run a conv or matmul on ``x`` in."""
    device_type = x.device.type
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return x.dtype


class _VersionWatch:
    """Remembers a tensor's version without keeping its memory alive."""

    def __init__(self, tensor):
        self._refs = [
            weakref.ref(t) for t in (tensor, tensor._base) if t is not None
        ]
        self._version = tensor._version
        # Formatted only on failure: this runs for every layer call.
        self._what = (tensor.dtype, tensor.shape)

    def check(self):
        for ref in self._refs:
            tensor = ref()
            if tensor is not None and tensor._version != self._version:
                raise RuntimeError(
                    f'one of the variables needed for gradient computation '
                    f'has been modified by an inplace operation: spikes '
                    f'[{self._what[0]} {list(self._what[1])}] saved as '
                    f'their spike code are at '
                    f'version {tensor._version}; expected version '
                    f'{self._version} instead.')


def _backward_layout(code, weight, groups, output_mask):
    """The memory layout a conv's backward is fastest in on this device.

    channels_last for the weight gradient of a 2-d depthwise conv (one
    filter per channel) with a kernel larger than 3 x 3 on CPU: oneDNN's
    NCHW kernel for it is slow (a 7 x 7 kernel's weight gradient measured
    13-20x the conv's forward, one thread, batch 8, 32 channels at
    112 x 112), its channels_last kernel 2-4x faster, conversions
    included; it has a fast NCHW kernel for 3 x 3. NCHW everywhere else
    (measured on CPU only: CUDA keeps NCHW).
    """
    depthwise = (
        weight.dim() == 4 and weight.shape[1] == 1
        and groups == weight.shape[0] == code.shape[1])
    if (output_mask[1] and depthwise and code.device.type == 'cpu'
            and weight.shape[2] * weight.shape[3] > 9):
        return torch.channels_last
    return torch.contiguous_format


def _conv_backward(spikes_code, grad_out, weight, with_bias, stride, padding,
                   dilation, groups, output_mask):
    """``aten.convolution_backward`` of a conv that read the spikes of
    ``spikes_code``, the spikes rebuilt in the layout it is fastest in
    (:func:`_backward_layout`).

    Args:
        spikes_code (SpikeCode): The code of the conv's input.
        grad_out (Tensor): The gradient of its output, in the dtype the
            conv ran in (``weight``'s).
        weight (Tensor): Its weight, in that dtype.
        with_bias (bool): Whether the conv has a bias.
        stride, padding, dilation (Sequence[int]): The conv's.
        groups (int): The conv's.
        output_mask (Sequence[bool]): Which gradients to compute (input,
            weight, bias).

    Returns:
        tuple[Tensor | None]: The gradients of the input, weight and bias
        (None where not asked), the first two contiguous whatever layout
        they were computed in, so the rest of the graph stays NCHW. In
        channels_last the weight gradient is the same sum as in NCHW in
        another order: equal to it within float rounding (1e-6 relative
        in fp32).
    """
    layout = _backward_layout(spikes_code.data, weight, groups, output_mask)
    spikes = torch.empty(
        spikes_code.data.shape,
        dtype=weight.dtype,
        device=weight.device,
        memory_format=layout)
    spikes_code.decode(weight.dtype, out=spikes)
    grads = torch.ops.aten.convolution_backward(
        grad_out.contiguous(memory_format=layout), spikes,
        weight.contiguous(memory_format=layout),
        [weight.shape[0]] if with_bias else None, stride, padding, dilation,
        False, [0] * len(stride), groups, output_mask)
    return tuple(None if grad is None else grad.contiguous() for grad in grads)


class _ConvKeepingCode(torch.autograd.Function):
    """``conv(spikes)`` that saves the spikes' code, not the spikes."""

    @staticmethod
    def forward(ctx, spikes, code, norm, weight, bias, stride, padding,
                dilation, groups):
        dtype = _compute_dtype(spikes)
        conv = F.conv1d if weight.dim() == 3 else F.conv2d
        with torch.autocast(spikes.device.type, enabled=False):
            out = conv(
                spikes.to(dtype), weight.to(dtype),
                None if bias is None else bias.to(dtype), stride, padding,
                dilation, groups)
        ctx.save_for_backward(code, weight)
        ctx.watch = _VersionWatch(spikes)
        ctx.args = (norm, stride, padding, dilation, groups, dtype,
                    spikes.dtype, None if bias is None else bias.dtype)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        code, weight = ctx.saved_tensors
        ctx.watch.check()
        (norm, stride, padding, dilation, groups, dtype, spikes_dtype,
         bias_dtype) = ctx.args
        needs = ctx.needs_input_grad
        grad_spikes, grad_weight, grad_bias = _conv_backward(
            SpikeCode(code, norm), grad_out.to(dtype), weight.to(dtype),
            bias_dtype is not None, stride, padding, dilation, groups,
            [needs[0], needs[3], needs[4]])
        return (None if grad_spikes is None else grad_spikes.to(spikes_dtype),
                None, None,
                None if grad_weight is None else grad_weight.to(weight.dtype),
                None if grad_bias is None else grad_bias.to(bias_dtype), None,
                None, None, None)


class _SpikeConvMixin:
    """A forward for ``nn.Conv1d`` / ``nn.Conv2d`` that saves the code of
    the spikes it reads, if they carry one."""

    def forward(self, x):
        code = spike_code_of(x)
        if code is None or self.padding_mode != 'zeros' or isinstance(
                self.padding, str):
            return super().forward(x)
        return _ConvKeepingCode.apply(x, code.data, code.norm, self.weight,
                                      self.bias, self.stride, self.padding,
                                      self.dilation, self.groups)


class SpikeConv1d(_SpikeConvMixin, nn.Conv1d):
    """``nn.Conv1d`` reading spikes: for spikes carrying their
    :class:`SpikeCode` it keeps the code for backward instead of the float
    spikes. Same parameters, values and gradients as ``nn.Conv1d``."""


class SpikeConv2d(_SpikeConvMixin, nn.Conv2d):
    """``nn.Conv2d`` reading spikes: for spikes carrying their
    :class:`SpikeCode` it keeps the code for backward instead of the float
    spikes. Same parameters, values and gradients as ``nn.Conv2d``."""


class _AttentionKeepingCodes(torch.autograd.Function):
    """``(v @ k^T) @ q`` saving the three spike codes and ``v @ k^T``."""

    @staticmethod
    def forward(ctx, q, k, v, q_code, k_code, v_code, norms):
        dtype = _compute_dtype(q)
        with torch.autocast(q.device.type, enabled=False):
            kv = v.to(dtype) @ k.to(dtype).transpose(-2, -1)
            out = kv @ q.to(dtype)
        ctx.save_for_backward(q_code, k_code, v_code, kv)
        ctx.watches = [_VersionWatch(t) for t in (q, k, v)]
        ctx.args = (norms, dtype, q.dtype)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        *codes, kv = ctx.saved_tensors
        for watch in ctx.watches:
            watch.check()
        norms, dtype, in_dtype = ctx.args
        q, k, v = (SpikeCode(code, norm).decode(dtype)
                   for code, norm in zip(codes, norms))
        grad_out = grad_out.to(dtype)
        grad_kv = grad_out @ q.transpose(-2, -1)
        grad_q = kv.transpose(-2, -1) @ grad_out
        grad_v = grad_kv @ k
        grad_k = grad_kv.transpose(-2, -1) @ v
        return (grad_q.to(in_dtype), grad_k.to(in_dtype), grad_v.to(in_dtype),
                None, None, None, None)


class LinearAttentionProduct(SpikeProduct):
    """The two products of spike-driven linear attention, per head.

    ``y = (v @ k^T) @ q`` on channel-first heads (``q, k``: ``B x h x d x
    N``, ``v``: ``B x h x d_v x N``), i.e. ``y^T = q^T (k^T v)``: without a
    softmax the product is associative, and ``k^T v`` is ``d x d_v`` per
    head, so cost and memory grow linearly with the tokens. When the
    operands carry their spike codes (training) it keeps those instead of
    the spikes.

    The attention's spike-driven execution (:meth:`spike_driven`) and its
    operation count (:meth:`flops`) are defined here, next to the product
    itself, for the analysis tools to use (the :class:`SpikeProduct`
    contract): ``v @ k^T`` (``kv``) consumes k's spikes, each adding a row
    of v; the product with q (``q``) consumes q's spikes, each adding a
    column of ``v k^T``.
    """

    operands = ('q', 'k', 'v')
    spike_operands = dict(kv='k', q='q')

    def forward(self, q, k, v):
        q_code, k_code, v_code = (spike_code_of(t) for t in (q, k, v))
        if q_code is None or k_code is None or v_code is None:
            return (v @ k.transpose(-2, -1)) @ q
        return _AttentionKeepingCodes.apply(q, k, v, q_code.data, k_code.data,
                                            v_code.data,
                                            (q_code.norm, k_code.norm,
                                             v_code.norm))

    @staticmethod
    def spike_driven(maps, norms):
        """The products from binary maps, by accumulation only.

        Args:
            maps (list[list[Tensor]]): Binary maps of q, k and v (one per
                virtual time step), each shaped as its operand.
            norms (list[float]): The operands' norms (q, k, v).

        Returns:
            dict: ``kv``, ``v @ k^T`` (binary x binary products, each an AND
            and a count, summed over every pair of steps), and ``q``, the
            output (each q spike adds a column of that matrix).
        """
        (q_maps, k_maps, v_maps), (q_norm, k_norm, v_norm) = maps, norms
        kv = sum(vs @ ks.transpose(-2, -1) for ks in k_maps for vs in v_maps)
        kv = kv / (k_norm * v_norm)
        return dict(kv=kv, q=sum(kv @ qs for qs in q_maps) / q_norm)

    @staticmethod
    def flops(q, k, v):
        """Multiply-accumulates of each product for these operands.

        Returns:
            dict: ``kv`` (``v @ k^T``) and ``q`` (``(v k^T) @ q``), each
            ``B * h * d * d_v * N``.
        """
        return dict(kv=v.numel() * k.shape[-2], q=v.numel() * q.shape[-2])
