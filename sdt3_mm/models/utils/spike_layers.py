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
import torch
from mmcv.cnn.bricks import DropPath
from torch import nn

from sdt3_mm.registry import MODELS, build_in_scope
from .spike_code_ops import LinearAttentionProduct, SpikeConv1d, SpikeConv2d
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


def _drop_path(rate):
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

    def forward(self, x):
        return self.bn(self.conv(self.neuron(x)))


class StackedConvBN1d(nn.Module):
    """Two bias-free pointwise conv1d, each followed by BatchNorm1d.

    The large family's re-parameterisable projection (``C -> hidden ->
    out``); there is no neuron between the two, so it folds into one
    linear map at deployment.

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


class ConvBlock(nn.Module):
    """Convolutional block of stages 1 and 2.

    ``x + SepConv(x)`` (base family only), then ``x + BN(conv3x3(neuron(
    BN(conv3x3(neuron(x))))))`` with a ``mlp_ratio`` times wider middle.

    Args:
        channels (int): Input and output channels.
        neuron_cfg (dict): Config of the neurons.
        sepconv (bool): Whether the block starts with a SepConv residual.
        bias (bool): Whether the 3x3 convs have a bias.
        mlp_ratio (int): Width ratio of the middle. Defaults to 4.
        drop_path_rate (float): Stochastic depth rate. Defaults to 0.
        linear_dw_pw (bool): The SepConv's form (see :class:`SepConv`).
            Defaults to False.
    """

    def __init__(self,
                 channels,
                 neuron_cfg,
                 sepconv,
                 bias,
                 mlp_ratio=4,
                 drop_path_rate=0.,
                 linear_dw_pw=False):
        super().__init__()
        mid = channels * mlp_ratio
        self.sepconv = SepConv(
            channels, 7, neuron_cfg,
            linear_dw_pw=linear_dw_pw) if sepconv else None
        self.conv1 = SpikeConvBN(
            SpikeConv2d(channels, mid, 3, padding=1, bias=bias),
            nn.BatchNorm2d(mid), neuron_cfg)
        self.conv2 = SpikeConvBN(
            SpikeConv2d(mid, channels, 3, padding=1, bias=bias),
            nn.BatchNorm2d(channels), neuron_cfg)
        self.drop_path = _drop_path(drop_path_rate)

    def residual_norms(self):
        """The BN closing each residual branch."""
        if self.sepconv is not None:
            yield self.sepconv.pwconv2.bn
        yield self.conv2.bn

    def forward(self, x):
        if self.sepconv is not None:
            x = x + self.drop_path(self.sepconv(x))
        return x + self.drop_path(self.conv2(self.conv1(x)))


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


class SpikeLinearAttention(nn.Module):
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


def base_attention(channels, num_heads, neuron_cfg, value_ratio=4, scale=None):
    """The base family's attention: 1x1 conv2d projections on NCHW.

    ``scale`` defaults to ``2 / sqrt(head_dim)``, as the reference's."""

    def conv_bn(cin, cout):
        return SpikeConvBN(
            SpikeConv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    v_channels = channels * value_ratio
    if scale is None:
        scale = 2 * (channels // num_heads)**-0.5
    return SpikeLinearAttention(
        q=conv_bn(channels, channels),
        k=conv_bn(channels, channels),
        v=conv_bn(channels, v_channels),
        proj=conv_bn(v_channels, channels),
        channels=channels,
        value_channels=v_channels,
        num_heads=num_heads,
        scale=scale,
        neuron_cfg=neuron_cfg)


def large_attention(channels,
                    num_heads,
                    neuron_cfg,
                    hidden_ratio=1.5,
                    scale=0.125):
    """The large family's attention: stacked conv1d projections on tokens."""
    hidden = int(channels * hidden_ratio)

    def stacked_bn():
        return SpikeConvBN(
            StackedConvBN1d(channels, hidden, channels),
            nn.BatchNorm1d(channels))

    return SpikeLinearAttention(
        q=stacked_bn(),
        k=stacked_bn(),
        v=stacked_bn(),
        proj=stacked_bn(),
        channels=channels,
        value_channels=channels,
        num_heads=num_heads,
        scale=scale,
        neuron_cfg=neuron_cfg)


class RepConv(nn.Module):
    """Meta-SpikeFormer's re-parameterisable projection.

    conv1x1 (``C_in -> C_in``), BN, a one-pixel border filled with the
    value the BN gives a zero input (so the border is what zero padding
    before the BN would have given), depthwise 3x3 without padding,
    conv1x1 (``C_in -> C_out``), BN. The border value is taken after the
    BN has updated its running statistics, with its affine parameters
    detached, as the reference computes it.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
    """

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv1 = SpikeConv2d(in_channels, in_channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.dwconv = nn.Conv2d(
            in_channels, in_channels, 3, groups=in_channels, bias=False)
        self.conv2 = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def _pad(self, x):
        bn = self.bn1
        value = (bn.bias.detach() - bn.running_mean * bn.weight.detach() /
                 torch.sqrt(bn.running_var + bn.eps)).view(1, -1, 1, 1)
        value = value.to(x.dtype)
        # Border built by concatenation rather than written in place, so
        # that exporters see the padded size symbolically.
        rows = value.expand(x.shape[0], -1, 1, x.shape[3] + 2)
        cols = value.expand(x.shape[0], -1, x.shape[2], 1)
        x = torch.cat([cols, x, cols], dim=3)
        return torch.cat([rows, x, rows], dim=2)

    def forward(self, x):
        x = self._pad(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(self.dwconv(x)))


def meta_attention(channels,
                   num_heads,
                   neuron_cfg,
                   attn_neuron_cfg,
                   scale=0.125):
    """Meta-SpikeFormer's attention: RepConv projections, scale 0.125."""

    def rep_bn():
        return SpikeConvBN(
            RepConv(channels, channels), nn.BatchNorm2d(channels))

    return SpikeLinearAttention(
        q=rep_bn(),
        k=rep_bn(),
        v=rep_bn(),
        proj=rep_bn(),
        channels=channels,
        value_channels=channels,
        num_heads=num_heads,
        scale=scale,
        neuron_cfg=neuron_cfg,
        attn_neuron_cfg=attn_neuron_cfg)


class TransformerBlock(nn.Module):
    """Transformer block on NCHW (base family, Meta-SpikeFormer).

    ``x + SepConv(x)`` (E-SpikeFormer only), then ``x + Attention(x)``,
    then ``x + MLP(x)``.

    Args:
        channels (int): Input and output channels.
        attention (SpikeLinearAttention): The attention.
        neuron_cfg (dict): Config of the neurons.
        sepconv (bool): Whether the block starts with a SepConv residual.
            Defaults to True.
        mlp_ratio (int): Hidden ratio of the MLP. Defaults to 4.
        drop_path_rate (float): Stochastic depth rate. Defaults to 0.
    """

    def __init__(self,
                 channels,
                 attention,
                 neuron_cfg,
                 sepconv=True,
                 mlp_ratio=4,
                 drop_path_rate=0.):
        super().__init__()
        self.sepconv = SepConv(channels, 3, neuron_cfg) if sepconv else None
        self.attn = attention
        self.mlp = SpikeMLP(channels, channels * mlp_ratio, neuron_cfg)
        self.drop_path = _drop_path(drop_path_rate)

    def residual_norms(self):
        """The BN closing each residual branch."""
        if self.sepconv is not None:
            yield self.sepconv.pwconv2.bn
        yield self.attn.proj.bn
        yield self.mlp.fc2.bn

    def forward(self, x):
        if self.sepconv is not None:
            x = x + self.drop_path(self.sepconv(x))
        x = x + self.drop_path(self.attn(x))
        tokens = x.flatten(2)
        tokens = tokens + self.drop_path(self.mlp(tokens))
        return tokens.view_as(x)


class LargeTransformerBlock(nn.Module):
    """Transformer block of the large family, on tokens.

    ``x + RepConv(x)`` (83M only), then ``x + ls1 * Attention(x)``, then
    ``x + ls2 * MLP(x)`` with per-channel layer scales.

    Args:
        channels (int): Input and output channels.
        attention (SpikeLinearAttention): The attention (on tokens).
        neuron_cfg (dict): Config of the neurons.
        rep_conv (bool): Whether the block starts with a RepConv residual.
        mlp_ratio (int): Hidden ratio of the MLP. Defaults to 4.
        layer_scale_init_value (float): Initial layer scale. Defaults to
            1e-6.
        drop_path_rate (float): Stochastic depth rate. Defaults to 0.
    """

    def __init__(self,
                 channels,
                 attention,
                 neuron_cfg,
                 rep_conv,
                 mlp_ratio=4,
                 layer_scale_init_value=1e-6,
                 drop_path_rate=0.):
        super().__init__()
        self.rep_conv = SpikeConvBN(
            StackedConvBN1d(channels, channels, channels),
            neuron_cfg=neuron_cfg) if rep_conv else None
        self.attn = attention
        self.mlp = SpikeMLP(channels, channels * mlp_ratio, neuron_cfg)
        self.layer_scale1 = nn.Parameter(layer_scale_init_value *
                                         torch.ones(channels))
        self.layer_scale2 = nn.Parameter(layer_scale_init_value *
                                         torch.ones(channels))
        self.drop_path = _drop_path(drop_path_rate)

    def residual_norms(self):
        """The BN closing each residual branch."""
        if self.rep_conv is not None:
            yield self.rep_conv.conv.bn2
        yield self.attn.proj.bn
        yield self.mlp.fc2.bn

    def forward(self, x):
        tokens = x.flatten(2)
        if self.rep_conv is not None:
            tokens = tokens + self.drop_path(self.rep_conv(tokens))
        tokens = tokens + self.drop_path(
            self.layer_scale1.unsqueeze(-1) * self.attn(tokens))
        tokens = tokens + self.drop_path(
            self.layer_scale2.unsqueeze(-1) * self.mlp(tokens))
        return tokens.view_as(x)
