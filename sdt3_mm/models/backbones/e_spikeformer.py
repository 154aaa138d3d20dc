"""E-SpikeFormer, the backbone of Spike-driven Transformer V3, with the
blocks of its two families (what Meta-SpikeFormer and the heads share too,
:class:`SpikeConvBN` and :class:`SpikeLinearAttention`, is in
:mod:`sdt3_mm.models.layers`).

Every block takes and returns NCHW membrane potentials: residuals add
membrane values before the next neuron ("membrane shortcut"), and every
branch starts with a neuron, so each linear operation in the body reads
spike counts. Token-wise parts (the MLP, the large family's blocks) run on
``x.flatten(2)``, a view, and return to NCHW by another view."""
import copy
import math
import numbers
from abc import abstractmethod

import torch
from mmcv.cnn.bricks import DropPath
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from sdt3_mm.registry import MODELS
from sdt3_mm.reliability import load_pretrained_backbone
from sdt3_mm.utils.arguments import is_integer
from ..layers import (ConstantScale, ConstantScales, MergedLayers,
                      SpikeConv1d, SpikeConv2d, SpikeConvBN,
                      SpikeLinearAttention, checkpoint_block, fold_norm_into,
                      scale_output_channels_)
from .spiking_backbone import SpikingBackbone


def drop_path(rate):
    """Stochastic depth of ``rate`` on a residual branch; the identity
    (no module state, nothing drawn) for a rate of 0."""
    return DropPath(rate) if rate > 0 else nn.Identity()


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
        self.drop_path = drop_path(drop_path_rate)

    def residual_norms(self):
        """The BN closing each residual branch."""
        if self.sepconv is not None:
            yield self.sepconv.pwconv2.bn
        yield self.conv2.bn

    def forward(self, x):
        if self.sepconv is not None:
            x = x + self.drop_path(self.sepconv(x))
        return x + self.drop_path(self.conv2(self.conv1(x)))


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

    return SpikeLinearAttention.with_projections(stacked_bn, channels,
                                                 num_heads, scale, neuron_cfg)


class _LayerScaled(ConstantScales):
    """Per-channel layer scales on residual branches (the
    :class:`ConstantScales` contract): each scale multiplies the output of
    the norm closing its branch, so it folds exactly into that norm (or,
    once the norm is folded, into the weight layer before it).

    A block lists its scales with the branches they close in
    :meth:`_scaled_branches`; a folded scale is set to None.
    """

    @abstractmethod
    def _scaled_branches(self):
        """``(scale name, the SpikeConvBN closing its branch)`` pairs."""

    def constant_scales(self):
        return [
            ConstantScale(
                name, 'per-channel layer scale (fold_bn folds it into the '
                'norm closing its branch)', True)
            for name, _ in self._scaled_branches()
            if getattr(self, name) is not None
        ]

    def fold_scales(self):
        folded = []
        for name, branch in self._scaled_branches():
            scale = getattr(self, name)
            if scale is None:
                continue
            scale_output_channels_(branch.output_layer(), scale)
            setattr(self, name, None)
            folded.append(name)
        return folded


class TransformerBlock(_LayerScaled, nn.Module):
    """Transformer block on NCHW (base family, Meta-SpikeFormer).

    ``x + SepConv(x)`` (E-SpikeFormer only), then ``x + Attention(x)``,
    then ``x + MLP(x)``; with layer scales, each branch is first multiplied
    per channel by its own learnable scale (``layer_scale1`` SepConv,
    ``layer_scale2`` attention, ``layer_scale3`` MLP, the reference's
    names), as in the reference's segmentation and event models.

    Args:
        channels (int): Input and output channels.
        attention (SpikeLinearAttention): The attention.
        neuron_cfg (dict): Config of the neurons.
        sepconv (bool): Whether the block starts with a SepConv residual.
            Defaults to True.
        mlp_ratio (int): Hidden ratio of the MLP. Defaults to 4.
        layer_scale_init_value (float, optional): Initial value of the
            layer scales; None for none. Defaults to None.
        drop_path_rate (float): Stochastic depth rate. Defaults to 0.
    """

    def __init__(self,
                 channels,
                 attention,
                 neuron_cfg,
                 sepconv=True,
                 mlp_ratio=4,
                 layer_scale_init_value=None,
                 drop_path_rate=0.):
        super().__init__()
        self.sepconv = SepConv(channels, 3, neuron_cfg) if sepconv else None
        self.attn = attention
        self.mlp = SpikeMLP(channels, channels * mlp_ratio, neuron_cfg)
        with_layer_scale = layer_scale_init_value is not None
        # Registered as None when absent (no state-dict key), as after
        # fold_scales.
        for name, present in (('layer_scale1', with_layer_scale and sepconv),
                              ('layer_scale2', with_layer_scale),
                              ('layer_scale3', with_layer_scale)):
            self.register_parameter(
                name,
                nn.Parameter(layer_scale_init_value *
                             torch.ones(channels)) if present else None)
        self.drop_path = drop_path(drop_path_rate)

    def _scaled_branches(self):
        branches = [('layer_scale2', self.attn.proj),
                    ('layer_scale3', self.mlp.fc2)]
        if self.sepconv is not None:
            branches.insert(0, ('layer_scale1', self.sepconv.pwconv2))
        return branches

    def residual_norms(self):
        """The BN closing each residual branch."""
        if self.sepconv is not None:
            yield self.sepconv.pwconv2.bn
        yield self.attn.proj.bn
        yield self.mlp.fc2.bn

    def forward(self, x):
        if self.sepconv is not None:
            branch = self.sepconv(x)
            if self.layer_scale1 is not None:
                branch = branch * self.layer_scale1.view(1, -1, 1, 1)
            x = x + self.drop_path(branch)
        branch = self.attn(x)
        if self.layer_scale2 is not None:
            branch = branch * self.layer_scale2.view(1, -1, 1, 1)
        x = x + self.drop_path(branch)
        tokens = x.flatten(2)
        branch = self.mlp(tokens)
        if self.layer_scale3 is not None:
            branch = branch * self.layer_scale3.view(1, -1, 1)
        tokens = tokens + self.drop_path(branch)
        return tokens.view_as(x)


class LargeTransformerBlock(_LayerScaled, nn.Module):
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
        self.drop_path = drop_path(drop_path_rate)

    def _scaled_branches(self):
        return [('layer_scale1', self.attn.proj),
                ('layer_scale2', self.mlp.fc2)]

    def residual_norms(self):
        """The BN closing each residual branch."""
        if self.rep_conv is not None:
            yield self.rep_conv.conv.bn2
        yield self.attn.proj.bn
        yield self.mlp.fc2.bn

    @staticmethod
    def _scaled(scale, branch):
        return branch if scale is None else scale.unsqueeze(-1) * branch

    def forward(self, x):
        tokens = x.flatten(2)
        if self.rep_conv is not None:
            tokens = tokens + self.drop_path(self.rep_conv(tokens))
        tokens = tokens + self.drop_path(
            self._scaled(self.layer_scale1, self.attn(tokens)))
        tokens = tokens + self.drop_path(
            self._scaled(self.layer_scale2, self.mlp(tokens)))
        return tokens.view_as(x)


def _is_positive_int(value):
    return is_integer(value) and value >= 1


# The neurons of each family, as the released checkpoints were trained.
_FAMILY_NEURON = {
    'base': dict(rounding='half_even', bounds='closed'),
    'large': dict(rounding='half_up', bounds='open'),
}

# The attention settings each family may change (attn_cfg), with the
# reference's values; a base-family scale of None is 2 / sqrt(head_dim).
_FAMILY_ATTENTION = {
    'base': dict(scale=None, value_ratio=4),
    'large': dict(scale=0.125, hidden_ratio=1.5),
    'meta': dict(scale=0.125),
}


@MODELS.register_module()
class ESpikeFormer(SpikingBackbone):
    """E-SpikeFormer backbone (Spike-driven Transformer V3, SFA neurons).

    From "Scaling Spike-driven Transformer with Efficient Spike Firing
    Approximation Training" (Yao et al., IEEE TPAMI 2025); the original
    code is BICLab/Spike-Driven-Transformer-V3 (ImageNet models in
    ``SDT_V3/Classification``), whose checkpoints load here unchanged.

    A spiking meta-architecture: two convolutional stages at strides 2/4
    and 8, then transformer stages with spike-driven linear attention.
    Every layer after the stem reads integer spike counts of SFA neurons.

    The base family (trained from scratch) has five taps::

        tap  stage                 stride  channels
        0    stage 1a (1 ConvBlock)     2  C0 / 2
        1    stage 1b (1 ConvBlock)     4  C0
        2    stage 2  (2 ConvBlocks)    8  C1
        3    stage 3  (6 blocks)       16  C2
        4    stage 4  (2 blocks)       16  C3

    The large family (MAE-pretrained) has taps 0..3, its stage 3 having
    ``depth`` blocks and no stage 4.

    Any input height and width of at least ``min_input_size`` (17: the
    total stride 16 plus one) works, in eager mode and in programs
    exported with dynamic sizes alike: every downsampling conv is padded
    so that a stride-2 conv maps ``H`` to ``ceil(H / 2)``, and attention
    is global over however many tokens there are, so a tap of stride ``s``
    has ``ceil(H / s) x ceil(W / s)`` positions, at least two a side.
    Smaller inputs are refused (a static check; values are not read on the
    forward; why 17 and not 16: see :class:`SpikingBackbone`).

    Args:
        arch (str | dict): A preset, ``'t'``, ``'s'``, ``'m'``, ``'l'``
            (base family) or ``'83m'``, ``'171m'`` (large family), or a dict
            ``dict(family='base'|'large', embed_dims=[...], depth=...,
            rep_conv=..., num_heads=8)``; ``depth`` and ``rep_conv`` are
            for the large family only. ``embed_dims`` are positive integers
            (four for the base family, three for the large one; the first
            at least 2, tap 0 having half its channels), ``num_heads`` a
            positive integer dividing the transformer stages' widths, and
            ``depth`` (blocks of the large family's stage 3) a positive
            integer. Defaults to ``'s'``.
        in_channels (int): Input channels, a positive integer (Python or
            numpy; 2 for ON / OFF event frames). Defaults to 3.
        D (int): Maximum integer of the SFA neurons (virtual time steps).
            Defaults to 4.
        out_indices (Sequence[int] | int): Taps to return, at least one and
            each once, in ``-num_taps..num_taps - 1`` (negative indices
            count from the last; ``num_taps`` is 5 for the base family, 4
            for the large). Defaults to -1 (the last tap).
        frozen_stages (int): The first ``frozen_stages`` taps' stages are
            frozen (parameters fixed, BN in eval), in ``0..num_taps``.
            Defaults to 0 (none).
        norm_eval (bool): Keep every BN in eval mode during training.
            Defaults to False.
        drop_path_rate (float): Stochastic depth, linearly increasing over
            the blocks, in ``[0, 1)``: the last block's probability of
            dropping its residual branches. The reference constructs
            drop-path but never applies it, so checkpoints reproduce with
            0. Defaults to 0.
        layer_scale_init_value (float, optional): Initial value of the
            per-channel layer scales that multiply the transformer blocks'
            residual branches, a positive number; None for the family's
            reference setting: the large family always has them (1e-6),
            the base family has none (its ImageNet models). The base
            family's segmentation and event models of the reference use
            1e-6 (three scales per block, ``layer_scale1/2/3``), so the
            transformer stages start near the identity; loading an
            ImageNet checkpoint into such a backbone loads everything but
            the layer scales, which are named in the log (see
            :func:`load_pretrained_backbone`). Defaults to None.
        zero_init_residual (bool): Start every residual branch at zero (the
            weight of the BN that closes it), so each block begins as the
            identity, as MMPretrain's ResNet does. The reference keeps
            PyTorch's defaults (False). Defaults to False.
        with_cp (bool): Keep only each block's input for backward and run
            the block again there (activation checkpointing; costs time,
            see docs/en/benchmark.md); BN running statistics are updated once,
            as without it. Defaults to False.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...,
            prefix=...)`` loads our checkpoints or the official ones (flat,
            under ``'model'`` or ``'state_dict'``), converting official names
            on the fly; missing or unexpected keys raise an error.
        neuron_cfg (dict, optional): The neurons, in place of the family's
            SFA neuron (any :class:`SpikingNeuron`). The backbone runs over
            their time steps (``dict(type='MultiStepLIFNeuron', T=4)``: the
            image repeated over 4 steps, see :class:`SpikingBackbone`).
            Defaults to None.
        attn_cfg (dict, optional): Attention settings to change: ``scale``
            (all families; base default ``2 / sqrt(head_dim)``, large
            0.125), ``value_ratio`` (base: value width over the input's, 4)
            and ``hidden_ratio`` (large: width inside the stacked
            projections, 1.5). Defaults to None (the reference's).
        average_time (bool): With ``time_steps > 1``, average each tap over
            the steps. Defaults to True.

    Examples:
        >>> import torch
        >>> from sdt3_mm.models import ESpikeFormer
        >>> model = ESpikeFormer(arch='t', out_indices=(0, 1, 2, 3, 4))
        >>> model = model.eval()
        >>> with torch.no_grad():
        ...     taps = model(torch.rand(1, 3, 64, 64))
        >>> for tap in taps:
        ...     print(tuple(tap.shape))
        (1, 12, 32, 32)
        (1, 24, 16, 16)
        (1, 48, 8, 8)
        (1, 96, 4, 4)
        (1, 128, 4, 4)
        >>> model.time_steps  # SFA neurons are stateless: one real step
        1
    """

    arch_zoo = {
        't':
        dict(family='base', embed_dims=[24, 48, 96, 128]),
        's':
        dict(family='base', embed_dims=[32, 64, 128, 192]),
        'm':
        dict(family='base', embed_dims=[48, 96, 192, 240]),
        'l':
        dict(family='base', embed_dims=[64, 128, 256, 360]),
        '83m':
        dict(
            family='large',
            embed_dims=[128, 256, 512],
            depth=12,
            rep_conv=True),
        '171m':
        dict(
            family='large',
            embed_dims=[196, 384, 768],
            depth=12,
            rep_conv=False),
    }
    families = tuple(_FAMILY_NEURON)
    # Blocks per stage of the base family; the large family's stage 3
    # depth comes from its arch.
    base_depths = (1, 1, 2, 6, 2)

    def __init__(self,
                 arch='s',
                 in_channels=3,
                 D=4,
                 out_indices=-1,
                 frozen_stages=0,
                 norm_eval=False,
                 drop_path_rate=0.,
                 layer_scale_init_value=None,
                 zero_init_residual=False,
                 with_cp=False,
                 init_cfg=None,
                 neuron_cfg=None,
                 attn_cfg=None,
                 average_time=True):
        super().__init__(average_time=average_time, init_cfg=init_cfg)
        self.arch_settings = self._parse_arch(arch)
        family = self.arch_settings['family']
        num_heads = self.arch_settings.get('num_heads', 8)
        # Checked here: 0 would build and fail in the stem's conv at the
        # first forward, a negative number in torch's own argument check.
        self.in_channels = in_channels = self.check_in_channels(in_channels)
        self.neuron_cfg = neuron_cfg or dict(
            type='SFANeuron', D=D, **_FAMILY_NEURON[family])
        self.attn_cfg = self._parse_attn_cfg(family, attn_cfg)

        depths, self.stage_channels, strides = self.stage_layout(
            self.arch_settings)
        self.num_taps = len(depths)
        self.total_stride = math.prod(strides)
        self.out_indices = self._parse_out_indices(out_indices)
        if not 0 <= frozen_stages <= self.num_taps:
            raise ValueError(
                f'{type(self).__name__}: frozen_stages must be in '
                f'0..{self.num_taps}, got {frozen_stages}')
        # A rate of 1 or more would drop every branch of the last blocks
        # (DropPath divides by the keep probability: NaN at 1); a negative
        # one is no probability.
        if isinstance(drop_path_rate, bool) or not isinstance(
                drop_path_rate, numbers.Real) or not 0 <= drop_path_rate < 1:
            raise ValueError(
                f'{type(self).__name__}: drop_path_rate must be in [0, 1), '
                f'got {drop_path_rate!r}')
        if layer_scale_init_value is not None and (
                isinstance(layer_scale_init_value, bool)
                or not isinstance(layer_scale_init_value, numbers.Real)
                or not 0 < layer_scale_init_value < math.inf):
            raise ValueError(
                f'{type(self).__name__}: layer_scale_init_value must be a '
                f'positive number or None, got {layer_scale_init_value!r}')
        if layer_scale_init_value is None and family == 'large':
            layer_scale_init_value = 1e-6
        self.layer_scale_init_value = layer_scale_init_value
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.zero_init_residual = zero_init_residual
        self.with_cp = with_cp

        block_rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.downsample_layers = nn.ModuleList()
        self.stages = nn.ModuleList()
        prev = in_channels
        for i, (depth, stride, channels) in enumerate(
                zip(depths, strides, self.stage_channels)):
            kernel = 7 if i == 0 else 3
            # The stem sees real-valued pixels: no neuron in front of it.
            conv = nn.Conv2d if i == 0 else SpikeConv2d
            self.downsample_layers.append(
                SpikeConvBN(
                    conv(prev, channels, kernel, stride, kernel // 2),
                    nn.BatchNorm2d(channels),
                    None if i == 0 else self.neuron_cfg))
            rates, block_rates = block_rates[:depth], block_rates[depth:]
            self.stages.append(
                nn.Sequential(*[
                    self._make_block(i, channels, num_heads, rate,
                                     layer_scale_init_value) for rate in rates
                ]))
            prev = channels
        self.take_time_steps_from_neurons()
        self._freeze_stages()

    def _make_block(self, stage, channels, num_heads, drop_path_rate,
                    layer_scale_init_value):
        family = self.arch_settings['family']
        if stage < 3:
            return ConvBlock(
                channels,
                self.neuron_cfg,
                sepconv=family == 'base',
                bias=family == 'large',
                drop_path_rate=drop_path_rate)
        if family == 'base':
            return TransformerBlock(
                channels,
                base_attention(channels, num_heads, self.neuron_cfg,
                               **self.attn_cfg),
                self.neuron_cfg,
                layer_scale_init_value=layer_scale_init_value,
                drop_path_rate=drop_path_rate)
        return LargeTransformerBlock(
            channels,
            large_attention(channels, num_heads, self.neuron_cfg,
                            **self.attn_cfg),
            self.neuron_cfg,
            rep_conv=self.arch_settings['rep_conv'],
            layer_scale_init_value=layer_scale_init_value,
            drop_path_rate=drop_path_rate)

    @classmethod
    def _parse_arch(cls, arch):
        if isinstance(arch, str):
            if arch.lower() not in cls.arch_zoo:
                raise KeyError(f'ESpikeFormer: unknown arch {arch!r}; the '
                               f'presets are {sorted(cls.arch_zoo)}')
            return copy.deepcopy(cls.arch_zoo[arch.lower()])
        if not isinstance(arch, dict):
            raise TypeError(f'ESpikeFormer: arch must be a preset name or a '
                            f'dict, got {type(arch).__name__}')
        arch = dict(arch)
        family = arch.get('family')
        if family not in cls.families:
            raise ValueError(f'{cls.__name__}: arch family must be one of '
                             f'{cls.families}, got {family!r}')
        needed = {'family', 'embed_dims'}
        if family == 'large':
            needed |= {'depth', 'rep_conv'}
        allowed = needed | {'num_heads'}
        missing, unknown = needed - set(arch), set(arch) - allowed
        if missing or unknown:
            raise ValueError(
                f'ESpikeFormer: a {family} arch dict needs keys '
                f'{sorted(needed)} (optional: num_heads); missing '
                f'{sorted(missing)}, unknown {sorted(unknown)}')
        num_dims = 3 if family == 'large' else 4
        if len(arch['embed_dims']) != num_dims:
            raise ValueError(
                f'ESpikeFormer: the {family} family has {num_dims} '
                f'embed_dims, got {list(arch["embed_dims"])}')
        dims = list(arch['embed_dims'])
        # Tap 0 has embed_dims[0] // 2 channels, so the first is at least 2.
        if not all(_is_positive_int(dim) for dim in dims) or dims[0] < 2:
            raise ValueError(
                f'{cls.__name__}: arch embed_dims must be positive integers, '
                f'the first at least 2 (tap 0 has half its channels), got '
                f'{dims}')
        if family == 'large' and not _is_positive_int(arch['depth']):
            raise ValueError(
                f'{cls.__name__}: arch depth (blocks of the large family\'s '
                f'stage 3) must be a positive integer, got '
                f'{arch["depth"]!r}')
        num_heads = arch.get('num_heads', 8)
        if not _is_positive_int(num_heads):
            raise ValueError(f'{cls.__name__}: arch num_heads must be a '
                             f'positive integer, got {num_heads!r}')
        for dim in arch['embed_dims'][-num_dims + 2:]:
            if dim % num_heads:
                raise ValueError(
                    f'ESpikeFormer: transformer width {dim} is not '
                    f'divisible by num_heads={num_heads}')
        return arch

    @classmethod
    def stage_layout(cls, arch_settings):
        """Blocks, channels and stride of each tap's stage for an arch.

        The one place the taps are derived from an arch: stage 1 is split
        in two taps at half and full first width.

        Args:
            arch_settings (dict): A parsed arch (``arch_zoo`` entry).

        Returns:
            tuple[list[int], list[int], list[int]]: Depths, channels and
            strides (of each stage's downsampling conv), one per tap.
        """
        dims = list(arch_settings['embed_dims'])
        channels = [dims[0] // 2] + dims
        if arch_settings['family'] == 'large':
            return [1, 1, 2, arch_settings['depth']], channels, [2, 2, 2, 2]
        return list(cls.base_depths), channels, [2, 2, 2, 2, 1]

    @classmethod
    def _parse_attn_cfg(cls, family, attn_cfg):
        settings = dict(_FAMILY_ATTENTION[family])
        attn_cfg = dict(attn_cfg or {})
        unknown = set(attn_cfg) - set(settings)
        if unknown:
            raise ValueError(
                f'{cls.__name__}: attn_cfg keys {sorted(unknown)} are not '
                f'settings of the {family} family\'s attention; it has '
                f'{sorted(settings)}')
        for key, value in attn_cfg.items():
            if not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f'{cls.__name__}: attn_cfg {key} must be a '
                                 f'positive number, got {value!r}')
        settings.update(attn_cfg)
        return settings

    def _parse_out_indices(self, out_indices):
        name = type(self).__name__
        if isinstance(out_indices, numbers.Integral):
            out_indices = [out_indices]
        out_indices = list(out_indices)
        # forward_taps runs up to the largest index and returns each tap
        # once: an empty list has no largest index, and a repeated tap
        # would silently come back once, one output short for the neck.
        if not out_indices:
            raise ValueError(f'{name}: out_indices must name at least one '
                             f'tap, got {out_indices}')
        parsed = []
        for index in out_indices:
            if not is_integer(index):
                raise TypeError(f'{name}: out_indices must be integers, got '
                                f'{out_indices}')
            if not -self.num_taps <= index < self.num_taps:
                raise IndexError(
                    f'{name}: out_indices {out_indices} include '
                    f'{index}, but this {self.arch_settings["family"]} '
                    f'family arch has taps 0..{self.num_taps - 1}')
            parsed.append(int(index) % self.num_taps)
        if len(set(parsed)) != len(parsed):
            repeated = sorted({i for i in parsed if parsed.count(i) > 1})
            negative = (f' (negative indices count back from tap '
                        f'{self.num_taps - 1})'
                        if min(out_indices) < 0 else '')
            raise ValueError(
                f'{name}: out_indices {out_indices} name tap(s) {repeated} '
                f'more than once{negative}; each tap is returned once')
        return tuple(parsed)

    def _freeze_stages(self):
        for i in range(self.frozen_stages):
            for module in (self.downsample_layers[i], self.stages[i]):
                module.eval()
                for param in module.parameters():
                    param.requires_grad = False

    def train(self, mode=True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def init_weights(self):
        if self.init_cfg is not None and \
                self.init_cfg.get('type') == 'Pretrained':
            load_pretrained_backbone(self, self.init_cfg['checkpoint'],
                                     self.init_cfg.get('prefix'))
            self._is_init = True
            return
        super().init_weights()
        if self.zero_init_residual:
            for stage in self.stages:
                for block in stage:
                    for norm in block.residual_norms():
                        nn.init.zeros_(norm.weight)

    def get_layer_depth(self, param_name, prefix=''):
        """Depth of a parameter, for layer-wise learning-rate decay.

        The stem is layer 0, the blocks are layers ``1..num_blocks`` in
        order (a stage's downsampling conv shares its first block's depth),
        and anything outside the backbone (the head) is the last layer.

        Args:
            param_name (str): Name of the parameter.
            prefix (str): Prefix of the backbone's parameters in the model.

        Returns:
            tuple[int, int]: The layer depth and the number of layers.
        """
        depths = [len(stage) for stage in self.stages]
        num_layers = sum(depths) + 2
        if not param_name.startswith(prefix):
            return num_layers - 1, num_layers
        name = param_name[len(prefix):].split('.')
        stage = int(name[1])
        first_block = sum(depths[:stage]) + 1
        if name[0] == 'downsample_layers':
            return (0 if stage == 0 else first_block), num_layers
        return first_block + int(name[2]), num_layers

    def forward_taps(self, x):
        outs = []
        # Stages after the last requested tap would only cost time.
        for i in range(max(self.out_indices) + 1):
            x = self.downsample_layers[i](x)
            for block in self.stages[i]:
                if self.with_cp and x.requires_grad:
                    x = checkpoint_block(block, x)
                else:
                    x = block(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
