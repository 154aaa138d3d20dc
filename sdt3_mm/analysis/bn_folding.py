"""Fold BatchNorm, merged layers and layer scales for deployment.

In evaluation a BN is a per-channel affine map, and so is a conv or a
linear layer along its output channels: ``BN(W x + b)`` equals
``W' x + b'`` (:func:`fold_into`). After folding, every weight layer that
reads spikes is an accumulate-only op with a bias, and no BN remains to
multiply. What else folds is declared by the blocks
(:mod:`sdt3_mm.models.layers.spike_contract`): a
:class:`~sdt3_mm.models.layers.spike_contract.MergedLayers` module (the large
family's stacked projection, Meta-SpikeFormer's RepConv) becomes the one
weight layer it merges to, and the foldable scales of a
:class:`~sdt3_mm.models.layers.spike_contract.ConstantScales` module (the
per-channel layer scales of both E-SpikeFormer families) fold into the norm
closing their branch, and with it into the weight layer before it.
"""
import copy

from mmcv.cnn import ConvModule
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from sdt3_mm.models.layers.spike_contract import (FOLDABLE_LAYERS,
                                                 ConstantScales, MergedLayers,
                                                 fold_norm_into)
from sdt3_mm.models.layers.blocks import SpikeConvBN

#: ``fold_into(layer, bn)``: a copy of ``layer`` computing ``bn(layer(x))``.
fold_into = fold_norm_into


def _fold_children(module):
    for name, child in module.named_children():
        if isinstance(child, MergedLayers):
            setattr(module, name, child.merge())
        else:
            _fold_children(child)
    if isinstance(module, SpikeConvBN) and isinstance(
            module.bn, _BatchNorm) and isinstance(module.conv,
                                                  FOLDABLE_LAYERS):
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
            if isinstance(layers[i], FOLDABLE_LAYERS) and isinstance(
                    layers[i + 1], _BatchNorm):
                module[i] = fold_into(layers[i], layers[i + 1])
                module[i + 1] = nn.Identity()
                layers[i + 1] = module[i + 1]


def fold_bn(model):
    """A copy of ``model``, in evaluation mode, with its BNs folded.

    First every foldable constant a block declares (layer scales) is folded
    into the norm closing its branch; then every
    :class:`~sdt3_mm.models.layers.spike_contract.MergedLayers` module is
    replaced by its merged layer and every BN that directly follows a conv
    or linear layer (inside our spiking layers, mmcv's ``ConvModule`` or an
    ``nn.Sequential``) is folded into it. The original model is left
    untouched.

    Args:
        model (nn.Module): The model.

    Returns:
        nn.Module: The folded model (in evaluation mode: the folded layers
        compute the BNs with their running statistics).
    """
    folded = copy.deepcopy(model).eval()
    for module in folded.modules():
        if isinstance(module, ConstantScales):
            module.fold_scales()
    _fold_children(folded)
    return folded
