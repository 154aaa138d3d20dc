"""Meta-SpikeFormer, the backbone of Spike-driven Transformer V2, with its
RepConv attention (blocks shared with E-SpikeFormer's base family)."""
import torch
from torch import nn

from sdt3_mm.registry import MODELS
from ..layers import (MergedLayers, SpikeConv2d, SpikeConvBN,
                      SpikeLinearAttention, norm_affine)
from .e_spikeformer import ConvBlock, ESpikeFormer, TransformerBlock


class RepConv(MergedLayers, nn.Module):
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

    def output_layer(self):
        """The norm producing the output channels."""
        return self.bn2

    def merge(self):
        """One 3x3 conv (zero padding 1, with bias) computing this module
        in evaluation, as the V2 paper deploys it.

        Every step is affine and the border holds what the first BN gives
        a zero input, i.e. what zero padding of the input would give, so
        ``bn2(conv2(dwconv(border(bn1(conv1(x))))))`` is a 3x3 conv of the
        zero-padded ``x``: weight ``s2[o] * sum_c W2[o, c] K[c] s1[c]
        W1[c, i]``, bias ``s2[o] * sum_c W2[o, c] t1[c] sum(K[c]) + t2[o]``
        (``s, t`` the BNs' scales and shifts, ``K`` the depthwise
        kernels). The conv reads the spikes that fed the RepConv, so it
        runs accumulate-only.
        """
        s1, t1 = norm_affine(self.bn1)
        s2, t2 = norm_affine(self.bn2)
        w1 = self.conv1.weight.double()[..., 0, 0]  # C x C_in
        kernels = self.dwconv.weight.double()[:, 0]  # C x 3 x 3
        w2 = self.conv2.weight.double()[..., 0, 0]  # C_out x C
        weight = torch.einsum('o,oc,cab,c,ci->oiab', s2, w2, kernels, s1, w1)
        bias = s2 * (w2 @ (t1 * kernels.sum((1, 2)))) + t2
        merged = SpikeConv2d(w1.shape[1], w2.shape[0], 3, padding=1)
        dtype = self.conv1.weight.dtype
        merged.weight = nn.Parameter(weight.to(dtype))
        merged.bias = nn.Parameter(bias.to(dtype))
        return merged.to(self.conv1.weight.device)

    def merged_flops(self, x, y):
        """A 3x3 conv ``C_in -> C_out`` at the input's resolution."""
        return y.numel() * self.conv1.in_channels * 9

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

    return SpikeLinearAttention.with_projections(rep_bn, channels, num_heads,
                                                 scale, neuron_cfg,
                                                 attn_neuron_cfg)


@MODELS.register_module()
class MetaSpikeFormer(ESpikeFormer):
    """Meta-SpikeFormer backbone (Spike-driven Transformer V2).

    From "Spike-driven Transformer V2: Meta Spiking Neural Network
    Architecture Inspiring the Design of Next-generation Neuromorphic
    Chips" (Yao et al., ICLR 2024); the original code is
    BICLab/Spike-Driven-Transformer-V2, whose checkpoints load here.

    E-SpikeFormer's base-family layout (same stages, strides, taps and
    official key names) with binary spikes of multi-step LIF neurons over
    ``T`` time steps instead of SFA integers, RepConv projections in the
    attention (output neuron threshold 0.5), transformer blocks without a
    SepConv, and SepConvs without a neuron between their depthwise and
    second pointwise conv.

    The image is repeated over the T steps and the steps are folded into
    the batch, time-major (``T * B``), for every conv and BN
    (:class:`SpikingBackbone`). With ``average_time=True`` (for dense
    heads) each tap is averaged over the T steps (``B x C x H x W``); with
    False (for :class:`MetaSpikeClsHead`, whose neuron runs over time)
    taps stay ``T * B`` deep. Height and width are at least
    ``min_input_size`` (17, the total stride 16 plus one), in eager mode
    and in exported programs alike (see :class:`SpikingBackbone`).

    Args:
        arch (str | dict): ``'15m'``, ``'31m'``, ``'55m'``, ``'124m'``, or
            ``dict(family='meta', embed_dims=[C0, C1, C2, C3],
            num_heads=8)``. Defaults to ``'55m'``.
        T (int): Time steps of the LIF neurons, hence of the backbone
            (:attr:`time_steps`). Defaults to 4.
        average_time (bool): Average each tap over the time steps.
            Defaults to True.
        **kwargs: ``in_channels``, ``out_indices``, ``frozen_stages``,
            ``norm_eval``, ``drop_path_rate``, ``zero_init_residual``,
            ``with_cp``, ``attn_cfg`` (``scale``, default 0.125),
            ``init_cfg`` (official V2 checkpoints load and convert as
            E-SpikeFormer's do) of :class:`ESpikeFormer`.
    """

    arch_zoo = {
        '15m': dict(family='meta', embed_dims=[64, 128, 256, 360]),
        '31m': dict(family='meta', embed_dims=[96, 192, 384, 480]),
        '55m': dict(family='meta', embed_dims=[128, 256, 512, 640]),
        '124m': dict(family='meta', embed_dims=[192, 384, 768, 960]),
    }
    families = ('meta', )

    def __init__(self, arch='55m', T=4, average_time=True, **kwargs):
        for key in ('D', 'neuron_cfg', 'layer_scale_init_value'):
            if key in kwargs:
                raise TypeError(f'MetaSpikeFormer has no {key!r}: its '
                                f'neurons are multi-step LIF over T steps')
        # T configures the neurons only; the backbone's time_steps is read
        # back from them (SpikingBackbone).
        super().__init__(
            arch=arch,
            neuron_cfg=dict(type='MultiStepLIFNeuron', T=T),
            average_time=average_time,
            **kwargs)

    def _make_block(self, stage, channels, num_heads, drop_path_rate,
                    layer_scale_init_value):
        if stage < 3:
            return ConvBlock(
                channels,
                self.neuron_cfg,
                sepconv=True,
                bias=False,
                drop_path_rate=drop_path_rate,
                linear_dw_pw=True)
        attention = meta_attention(channels, num_heads, self.neuron_cfg,
                                   dict(self.neuron_cfg, v_threshold=0.5),
                                   **self.attn_cfg)
        return TransformerBlock(
            channels,
            attention,
            self.neuron_cfg,
            sepconv=False,
            drop_path_rate=drop_path_rate)
