"""Blocks both backbone families and the heads share.

:class:`SpikeConvBN` (a neuron, a linear operation, a norm) is the unit of
every stage, head and neck, and the pair BN folding walks;
:class:`SpikeLinearAttention` serves both families with their own
projections (the families' blocks live next to their backbones, in
:mod:`sdt3_mm.models.backbones`).

Every block takes and returns membrane potentials: residuals add membrane
values before the next neuron ("membrane shortcut"), and every branch
starts with a neuron, so each linear operation in the body reads spikes.
In training, a neuron's output carries the spikes' one-byte code (see
:mod:`sdt3_mm.models.neurons.spiking_neuron`): the convs and attention
products that read spikes (:mod:`.spike_code_ops`) save the code for
backward in place of the float spikes.
"""
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..neurons import build_neuron, reshape_spikes
from .spike_code_ops import LinearAttentionProduct
from .spike_contract import FOLDABLE_LAYERS, ConstantScale, ConstantScales


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
