"""Fold BatchNorm into the weight layer before it, for deployment.

In evaluation a BN is a per-channel affine map, and so is a conv or a
linear layer along its output channels: ``BN(W x + b)`` equals
``W' x + b'`` with ``W' = W * g / s`` and ``b' = (b - mean) * g / s + beta``
(``s = sqrt(var + eps)``). After folding, every weight layer that reads
spikes is an accumulate-only op with a bias, and no BN remains to
multiply. The large family's stacked projection (conv1d, BN1d, conv1d,
BN1d, no neuron between) becomes one conv1d, and Meta-SpikeFormer's
RepConv (conv1x1, BN, border, depthwise 3x3, conv1x1, BN, no neuron
between) one 3x3 conv on the spikes, as the V2 paper deploys it.
"""
import copy

import torch
from mmcv.cnn import ConvModule
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from sdt3_mm.models.backbones.meta_spikeformer import RepConv
from sdt3_mm.models.utils.spike_code_ops import SpikeConv2d
from sdt3_mm.models.utils.spike_layers import SpikeConvBN, StackedConvBN1d

_FOLDABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def _bn_affine(bn):
    """Scale and shift of a BN in evaluation, in float64."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(f'fold_bn: {bn} keeps no running statistics, so it '
                         f'is not an affine map in evaluation')
    scale = 1 / torch.sqrt(bn.running_var.double() + bn.eps)
    if bn.affine:
        scale = scale * bn.weight.double()
    shift = -bn.running_mean.double() * scale
    if bn.affine:
        shift = shift + bn.bias.double()
    return scale, shift


def fold_into(layer, bn):
    """A copy of ``layer`` with ``bn`` (which follows it) folded in.

    Args:
        layer (nn.Module): Conv (1d, 2d, 3d, grouped and depthwise
            included) or linear layer.
        bn (_BatchNorm): The norm over its output channels.

    Returns:
        nn.Module: The layer, with a bias, computing ``bn(layer(x))``.
    """
    if not isinstance(layer, _FOLDABLE):
        raise TypeError(f'fold_bn: cannot fold a norm into '
                        f'{type(layer).__name__}')
    out_channels = layer.weight.shape[0]
    if bn.num_features != out_channels:
        raise ValueError(f'fold_bn: {bn} does not match the {out_channels} '
                         f'output channels of {layer}')
    scale, shift = _bn_affine(bn)
    weight = layer.weight.double()
    bias = layer.bias.double() if layer.bias is not None else 0.
    folded = copy.deepcopy(layer)
    dtype = layer.weight.dtype
    folded.weight = nn.Parameter(
        (weight * scale.view(-1, *[1] * (weight.dim() - 1))).to(dtype))
    folded.bias = nn.Parameter((bias * scale + shift).to(dtype))
    return folded


def merge_stacked(stacked):
    """One conv1d computing a :class:`StackedConvBN1d` in evaluation."""
    first = fold_into(stacked.conv1, stacked.bn1)
    second = fold_into(stacked.conv2, stacked.bn2)
    w1, w2 = first.weight.double()[..., 0], second.weight.double()[..., 0]
    merged = nn.Conv1d(w1.shape[1], w2.shape[0], 1)
    dtype = stacked.conv1.weight.dtype
    merged.weight = nn.Parameter((w2 @ w1).unsqueeze(-1).to(dtype))
    merged.bias = nn.Parameter(
        (w2 @ first.bias.double() + second.bias.double()).to(dtype))
    return merged.to(stacked.conv1.weight.device)


def merge_rep_conv(rep):
    """One 3x3 conv (zero padding 1, with bias) computing a
    :class:`RepConv` in evaluation.

    Every step of a RepConv is affine and its border holds what the first
    BN gives a zero input, i.e. what zero padding of its input would give,
    so ``bn2(conv2(dwconv(border(bn1(conv1(x))))))`` is a 3x3 conv of the
    zero-padded ``x``: weight ``s2[o] * sum_c W2[o, c] K[c] s1[c] W1[c, i]``,
    bias ``s2[o] * sum_c W2[o, c] t1[c] sum(K[c]) + t2[o]`` (``s, t`` the
    BNs' scales and shifts, ``K`` the depthwise kernels). The conv reads
    the spikes that fed the RepConv, so it runs accumulate-only.
    """
    s1, t1 = _bn_affine(rep.bn1)
    s2, t2 = _bn_affine(rep.bn2)
    w1 = rep.conv1.weight.double()[..., 0, 0]  # C x C_in
    kernels = rep.dwconv.weight.double()[:, 0]  # C x 3 x 3
    w2 = rep.conv2.weight.double()[..., 0, 0]  # C_out x C
    weight = torch.einsum('o,oc,cab,c,ci->oiab', s2, w2, kernels, s1, w1)
    bias = s2 * (w2 @ (t1 * kernels.sum((1, 2)))) + t2
    merged = SpikeConv2d(w1.shape[1], w2.shape[0], 3, padding=1)
    dtype = rep.conv1.weight.dtype
    merged.weight = nn.Parameter(weight.to(dtype))
    merged.bias = nn.Parameter(bias.to(dtype))
    return merged.to(rep.conv1.weight.device)


def _fold_children(module):
    for name, child in module.named_children():
        if isinstance(child, StackedConvBN1d):
            setattr(module, name, merge_stacked(child))
        elif isinstance(child, RepConv):
            setattr(module, name, merge_rep_conv(child))
        else:
            _fold_children(child)
    if isinstance(module, SpikeConvBN) and isinstance(
            module.bn, _BatchNorm) and isinstance(module.conv, _FOLDABLE):
        module.conv = fold_into(module.conv, module.bn)
        module.bn = nn.Identity()
    elif isinstance(module, ConvModule) and module.with_norm and isinstance(
            module.norm, _BatchNorm) and module.order.index(
                'conv') < module.order.index('norm'):
        module.conv = fold_into(module.conv, module.norm)
        setattr(module, module.norm_name, nn.Identity())
    elif isinstance(module, nn.Sequential):
        layers = list(module)
        for i in range(len(layers) - 1):
            if isinstance(layers[i], _FOLDABLE) and isinstance(
                    layers[i + 1], _BatchNorm):
                module[i] = fold_into(layers[i], layers[i + 1])
                module[i + 1] = nn.Identity()
                layers[i + 1] = module[i + 1]


def fold_bn(model):
    """A copy of ``model``, in evaluation mode, with its BNs folded.

    Every BN that directly follows a conv or linear layer (inside our
    spiking layers, mmcv's ``ConvModule`` or an ``nn.Sequential``) is
    folded into it, every :class:`StackedConvBN1d` becomes one conv1d and
    every :class:`RepConv` one 3x3 conv (:func:`merge_rep_conv`). The
    original model is left untouched.

    Args:
        model (nn.Module): The model.

    Returns:
        nn.Module: The folded model (in evaluation mode: the folded layers
        compute the BNs with their running statistics).
    """
    folded = copy.deepcopy(model).eval()
    _fold_children(folded)
    return folded
