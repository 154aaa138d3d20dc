"""Building blocks of E-SpikeFormer.

Every block takes and returns NCHW membrane potentials: residuals add
membrane values before the next neuron ("membrane shortcut"), and every
branch starts with an SFA neuron, so each linear operation in the body
reads integer spike counts. Token-wise parts (the MLP, the large family's
blocks) run on ``x.flatten(2)``, a view, and return to NCHW by another view.

In training, a neuron's output carries the spikes' one-byte code (see
:mod:`.spiking_neuron`): the convs and attention products that read
spikes (:mod:`.spike_code_ops`) save the code for backward in place of
the float spikes.
"""
from mmcv.cnn.bricks import DropPath
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from sdt3_mm.registry import MODELS, build_in_scope
from .spike_code_ops import LinearAttentionProduct, SpikeConv1d, SpikeConv2d
from .spike_contract import (FOLDABLE_LAYERS, ConstantScale, ConstantScales,
                             MergedLayers, fold_norm_into)
from .spiking_neuron import reshape_spikes


def build_neuron(neuron_cfg):
    """Build a neuron from its config, or ``nn.Identity`` for ``None``."""
    if neuron_cfg is None:
        return nn.Identity()
    return build_in_scope(MODELS, neuron_cfg)


def replace_relus(module, neuron_cfg):
    """Put a neuron in place of every ``nn.ReLU`` inside ``module``.

    MMDetection's heads place a ReLU after each conv and FC; a spiking
    head fires there instead, so every following layer reads spikes.

    Args:
        module (nn.Module): Module to change in place.
        neuron_cfg (dict): Config of the neurons.
    """
    for name, child in module.named_children():
        if isinstance(child, nn.ReLU):
            setattr(module, name, build_neuron(neuron_cfg))
        else:
            replace_relus(child, neuron_cfg)


def drop_path(rate):
    return DropPath(rate) if rate > 0 else nn.Identity()


class SpikeConvBN(nn.Module):
    """A neuron, then a linear operation, then an optional BatchNorm.

    Args:
        conv (nn.Module): The linear operation (a conv, or a stack of them).
        bn (nn.Module, optional): The norm after it. Defaults to None.
        neuron_cfg (dict, optional): The neuron in front; ``None`` when the
            input is already spikes or real-valued pixels. Defaults to None.
    """

    def __init__(self, conv, bn=None, neuron_cfg=None):
        super().__init__()
        self.neuron = build_neuron(neuron_cfg)
        self.conv = conv
        self.bn = bn if bn is not None else nn.Identity()

    def output_layer(self):
        """The module that produces this one's output channels (the norm,
        or the linear operation when there is none): where a per-channel
        constant after it folds."""
        if isinstance(self.bn, _BatchNorm):
            return self.bn
        if isinstance(self.conv, FOLDABLE_LAYERS):
            return self.conv
        return self.conv.output_layer()

    def forward(self, x):
        return self.bn(self.conv(self.neuron(x)))


class StackedConvBN1d(MergedLayers, nn.Module):
    """Two bias-free pointwise conv1d, each followed by BatchNorm1d.

    The large family's re-parameterisable projection (``C -> hidden ->
    out``); there is no neuron between the two, so it folds into one
    linear map at deployment (:meth:`merge`).

    Args:
        in_channels (int): Input channels.
        hidden_channels (int): Channels between the two convs.
        out_channels (int): Output channels.
    """

    def __init__(self, in_channels, hidden_channels, out_channels):
        super().__init__()
        self.conv1 = SpikeConv1d(in_channels, hidden_channels, 1, bias=False)
        self.bn1 = nn.BatchNorm1d(hidden_channels)
        self.conv2 = nn.Conv1d(hidden_channels, out_channels, 1, bias=False)
        self.bn2 = nn.BatchNorm1d(out_channels)

    def output_layer(self):
        """The norm producing the output channels."""
        return self.bn2

    def merge(self):
        """One conv1d (with bias) computing this module in evaluation."""
        first = fold_norm_into(self.conv1, self.bn1)
        second = fold_norm_into(self.conv2, self.bn2)
        w1, w2 = first.weight.double()[..., 0], second.weight.double()[...,
                                                                       0]
        merged = nn.Conv1d(w1.shape[1], w2.shape[0], 1)
        dtype = self.conv1.weight.dtype
        merged.weight = nn.Parameter((w2 @ w1).unsqueeze(-1).to(dtype))
        merged.bias = nn.Parameter(
            (w2 @ first.bias.double() + second.bias.double()).to(dtype))
        return merged.to(self.conv1.weight.device)

    def merged_flops(self, x, y):
        """``C_in x C_out`` per token: one pointwise conv."""
        return x.numel() * self.conv2.out_channels

    def forward(self, x):
        return self.bn2(self.conv2(self.bn1(self.conv1(x))))


class SepConv(nn.Module):
    """Spiking separable conv: pointwise, depthwise, pointwise.

    E-SpikeFormer puts a neuron in front of each conv and a BN after each;
    Meta-SpikeFormer (``linear_dw_pw=True``) has neither between the
    depthwise and the second pointwise conv, which form one linear map.

    Args:
        channels (int): Input and output channels.
        kernel_size (int): Kernel of the depthwise conv.
        neuron_cfg (dict): Config of the neurons in front of the convs.
        expand_ratio (int): Width of the depthwise conv relative to
            ``channels``. Defaults to 2.
        linear_dw_pw (bool): No BN after the depthwise conv and no neuron
            before the second pointwise conv. Defaults to False.
    """

    def __init__(self,
                 channels,
                 kernel_size,
                 neuron_cfg,
                 expand_ratio=2,
                 linear_dw_pw=False):
        super().__init__()
        mid = channels * expand_ratio
        self.pwconv1 = SpikeConvBN(
            SpikeConv2d(channels, mid, 1, bias=False), nn.BatchNorm2d(mid),
            neuron_cfg)
        self.dwconv = SpikeConvBN(
            SpikeConv2d(
                mid,
                mid,
                kernel_size,
                padding=kernel_size // 2,
                groups=mid,
                bias=False), None if linear_dw_pw else nn.BatchNorm2d(mid),
            neuron_cfg)
        self.pwconv2 = SpikeConvBN(
            SpikeConv2d(mid, channels, 1, bias=False),
            nn.BatchNorm2d(channels), None if linear_dw_pw else neuron_cfg)

    def forward(self, x):
        return self.pwconv2(self.dwconv(self.pwconv1(x)))


class SpikeMLP(nn.Module):
    """Token MLP: neuron, conv1d, BN1d, neuron, conv1d, BN1d.

    Args:
        channels (int): Input and output channels.
        hidden_channels (int): Hidden channels.
        neuron_cfg (dict): Config of the neurons.
    """

    def __init__(self, channels, hidden_channels, neuron_cfg):
        super().__init__()
        self.fc1 = SpikeConvBN(
            SpikeConv1d(channels, hidden_channels, 1),
            nn.BatchNorm1d(hidden_channels), neuron_cfg)
        self.fc2 = SpikeConvBN(
            SpikeConv1d(hidden_channels, channels, 1),
            nn.BatchNorm1d(channels), neuron_cfg)

    def forward(self, x):
        return self.fc2(self.fc1(x))


class SpikeLinearAttention(ConstantScales, nn.Module):
    """Spike-driven self-attention without softmax.

    ``y = neuron(q @ (k^T @ v) * scale)`` per head, with q, k, v spike
    tensors (:class:`LinearAttentionProduct`: without a softmax the product
    is associative, and because every operand is a multiple of ``1/D`` both
    orders give the same float value; ``k^T @ v`` is ``head_dim x head_dim``,
    so memory grows linearly with the number of tokens).

    The projections are given as modules, so the same attention serves
    the base family (1x1 conv2d on NCHW), the large family (stacked conv1d
    on tokens) and Meta-SpikeFormer (RepConv). Channels are split into
    heads directly in the channel-first layout (``y^T = (v^T k) q^T`` needs
    no transposed copies), by the static head width, so the token count
    stays symbolic for tracers and exporters.

    Args:
        q (nn.Module): Query projection (``C -> C``).
        k (nn.Module): Key projection (``C -> C``).
        v (nn.Module): Value projection (``C -> C_v``).
        proj (nn.Module): Output projection (``C_v -> C``).
        channels (int): ``C``.
        value_channels (int): ``C_v``.
        num_heads (int): Number of heads; divides ``C`` and ``C_v``.
        scale (float): Scale of the attention product.
        neuron_cfg (dict): Config of the neurons.
        attn_neuron_cfg (dict, optional): Config of the neuron after the
            product, if it differs. Defaults to None (``neuron_cfg``).
    """

    def __init__(self,
                 q,
                 k,
                 v,
                 proj,
                 channels,
                 value_channels,
                 num_heads,
                 scale,
                 neuron_cfg,
                 attn_neuron_cfg=None):
        super().__init__()
        for width in (channels, value_channels):
            if num_heads < 1 or width % num_heads:
                raise ValueError(f'SpikeLinearAttention: {width} channels '
                                 f'do not split into {num_heads} heads')
        self.num_heads = num_heads
        self.head_dims = (channels // num_heads, value_channels // num_heads)
        self.scale = float(scale)
        self.in_neuron = build_neuron(neuron_cfg)
        self.q = q
        self.k = k
        self.v = v
        self.q_neuron = build_neuron(neuron_cfg)
        self.k_neuron = build_neuron(neuron_cfg)
        self.v_neuron = build_neuron(neuron_cfg)
        self.product = LinearAttentionProduct()
        self.attn_neuron = build_neuron(attn_neuron_cfg or neuron_cfg)
        self.proj = proj

    @classmethod
    def with_projections(cls,
                         make_projection,
                         channels,
                         num_heads,
                         scale,
                         neuron_cfg,
                         attn_neuron_cfg=None):
        """The attention with four projections ``C -> C`` made alike by
        ``make_projection()`` (q, k, v and the output)."""
        return cls(
            q=make_projection(),
            k=make_projection(),
            v=make_projection(),
            proj=make_projection(),
            channels=channels,
            value_channels=channels,
            num_heads=num_heads,
            scale=scale,
            neuron_cfg=neuron_cfg,
            attn_neuron_cfg=attn_neuron_cfg)

    def constant_scales(self):
        """The attention scale, which multiplies the product before the
        output neuron (a chip folds it into that neuron's threshold; here
        it stays)."""
        return [
            ConstantScale('scale', f'attention scale x{self.scale:g}', False)
        ]

    def _heads(self, spikes, projection, neuron, head_dim):
        heads = neuron(projection(spikes))
        return reshape_spikes(heads,
                              (heads.shape[0], self.num_heads, head_dim, -1))

    def forward(self, x):
        spikes = self.in_neuron(x)
        d, d_v = self.head_dims
        y = self.product(
            self._heads(spikes, self.q, self.q_neuron, d),
            self._heads(spikes, self.k, self.k_neuron, d),
            self._heads(spikes, self.v, self.v_neuron, d_v))
        y = y.reshape(x.shape[0], -1, *x.shape[2:]) * self.scale
        return self.proj(self.attn_neuron(y))
