"""What the analysis tools must know of a model beyond its neurons.

:class:`~sdt3_mm.models.neurons.SpikingNeuron` is the contract of a neuron. A
spiking network also computes things that are neither a neuron nor a plain
weight layer, and a tool that counts operations, runs the network
spike-driven or folds it for deployment must know them. Blocks declare them
through the three small base classes here, and the tools (spike counting and
energy, :class:`~sdt3_mm.engine.FiringRateHook`, spike-driven execution, BN
folding) dispatch on these classes only, never on a concrete block:

* :class:`SpikeProduct`: a product of two spike tensors (the attention's
  ``v @ k^T`` and the product with ``q``), with its operation count and its
  spike-driven form.
* :class:`MergedLayers`: weight layers with no neuron between them (a
  stacked projection, a RepConv) that deploy as one weight layer reading
  the spikes the first one reads.
* :class:`ConstantScales`: multiplications by constants outside the weight
  layers (layer scales, the attention scale), with whether they fold exactly
  into the layer before them.

The helpers below fold an evaluation-mode BatchNorm, or a per-channel
constant, into the weight layer or norm that produces those channels.
"""
import copy
from abc import ABCMeta, abstractmethod
from typing import NamedTuple

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

#: Weight layers a norm or a per-channel constant folds into, along their
#: output channels (dimension 0 of the weight).
FOLDABLE_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def norm_affine(norm):
    """Scale and shift of a BatchNorm in evaluation, in float64.

    Raises:
        ValueError: If the norm keeps no running statistics (it is then no
            fixed affine map).
    """
    if norm.running_mean is None or norm.running_var is None:
        raise ValueError(f'{norm} keeps no running statistics, so it is '
                         f'not an affine map in evaluation')
    scale = 1 / torch.sqrt(norm.running_var.double() + norm.eps)
    if norm.affine:
        scale = scale * norm.weight.double()
    shift = -norm.running_mean.double() * scale
    if norm.affine:
        shift = shift + norm.bias.double()
    return scale, shift


def fold_norm_into(layer, norm):
    """A copy of ``layer`` with ``norm`` (which follows it) folded in.

    ``norm(W x + b)`` is ``W' x + b'`` with ``W' = W * g / s`` and
    ``b' = (b - mean) * g / s + beta`` (``s = sqrt(var + eps)``).

    Args:
        layer (nn.Module): Conv (1d, 2d, 3d, grouped and depthwise
            included) or linear layer.
        norm (_BatchNorm): The norm over its output channels.

    Returns:
        nn.Module: The layer, with a bias, computing ``norm(layer(x))`` as
        the norm does in evaluation.
    """
    if not isinstance(layer, FOLDABLE_LAYERS):
        raise TypeError(f'fold_bn: cannot fold a norm into '
                        f'{type(layer).__name__}')
    out_channels = layer.weight.shape[0]
    if norm.num_features != out_channels:
        raise ValueError(f'fold_bn: {norm} does not match the '
                         f'{out_channels} output channels of {layer}')
    scale, shift = norm_affine(norm)
    weight = layer.weight.double()
    bias = layer.bias.double() if layer.bias is not None else 0.
    folded = copy.deepcopy(layer)
    dtype = layer.weight.dtype
    folded.weight = nn.Parameter(
        (weight * scale.view(-1, *[1] * (weight.dim() - 1))).to(dtype))
    folded.bias = nn.Parameter((bias * scale + shift).to(dtype))
    return folded


def scale_output_channels_(module, scale):
    """Multiply the output channels of ``module`` by ``scale``, in place.

    Exact for the maps that are linear in their parameters: an affine
    BatchNorm (its weight and bias) and a conv or linear layer (its weight
    rows and bias).

    Args:
        module (nn.Module): An affine BatchNorm, a conv or a linear layer.
        scale (Tensor): One factor per output channel.

    Raises:
        TypeError: For any other module (a norm without affine parameters
            included: it has nothing to scale).
    """
    scale = scale.detach().double()
    with torch.no_grad():
        if isinstance(module, _BatchNorm) and module.affine:
            params = (module.weight, module.bias)
        elif isinstance(module, FOLDABLE_LAYERS):
            params = (module.weight, module.bias)
        else:
            raise TypeError(f'cannot fold a per-channel scale into '
                            f'{type(module).__name__}: an affine norm, a '
                            f'conv or a linear layer is needed')
        for param in params:
            if param is not None:
                shape = (-1, *[1] * (param.dim() - 1))
                param.copy_(
                    (param.double() * scale.view(shape)).to(param.dtype))


class SpikeProduct(nn.Module, metaclass=ABCMeta):
    """A product whose operands are spike tensors (attention products).

    Called as a module on its operands (positionally, in the order of
    :attr:`operands`), in evaluation mode, so that tools can hook it. It
    is made of partial products (the keys of :meth:`flops`), each of which
    consumes the spikes of one operand (:attr:`spike_operands`).

    Attributes:
        operands (tuple[str]): Names of the operands, in call order.
        spike_operands (dict): For each partial product, the name of the
            operand whose spikes it consumes.
    """

    operands: tuple = ()
    spike_operands: dict = {}

    @staticmethod
    @abstractmethod
    def flops(*operands):
        """Multiply-accumulates of each partial product for these operands.

        Returns:
            dict: Partial product name to multiply-accumulates.
        """

    @staticmethod
    @abstractmethod
    def spike_driven(maps, norms):
        """The partial products from the operands' binary maps, by
        accumulation only.

        Args:
            maps (list[list[Tensor]]): Per operand, its binary maps (one
                per virtual time step), shaped as the operand.
            norms (list[float]): Per operand, the divisor of its counts.

        Returns:
            dict: Partial product name to its value, in the order of
            :meth:`flops`; the last is the product's output. On the
            operands themselves (one map each, norm 1) the values are the
            module's own.
        """


class MergedLayers(metaclass=ABCMeta):
    """Weight layers (and norms) with no neuron between them, which deploy
    as one weight layer.

    In evaluation every part is affine, so the whole is one weight layer
    reading what the first part reads: that is what a chip runs, what the
    operation count charges (:meth:`merged_flops`, reading the module's
    input) and what ``fold_bn`` puts in its place (:meth:`merge`).
    """

    @abstractmethod
    def merge(self):
        """One weight layer computing this module in evaluation."""

    @abstractmethod
    def merged_flops(self, x, y):
        """Multiply-accumulates of the merged layer on input ``x`` with
        output ``y`` (computed from shapes: no merging needed)."""


class ConstantScale(NamedTuple):
    """A multiplication by a constant outside the weight layers.

    Attributes:
        name (str): Its name under the declaring module (a parameter or
            attribute name).
        description (str): What it is, for reports.
        foldable (bool): Whether :meth:`ConstantScales.fold_scales` folds
            it exactly into the layer before it.
    """

    name: str
    description: str
    foldable: bool


class ConstantScales(metaclass=ABCMeta):
    """A module that multiplies by constants outside its weight layers.

    Such a multiplication is not an accumulate: a spike-driven report lists
    it; where it scales the output channels of a linear map with no neuron
    between (a layer scale after the norm closing a residual branch), it
    folds exactly into that map's weights, which is what ``fold_bn`` does.
    """

    @abstractmethod
    def constant_scales(self):
        """The multiplications this module makes now, as a list of
        :class:`ConstantScale` (folded ones are gone)."""

    def fold_scales(self):
        """Fold every foldable scale into the layer or norm before it, in
        place; the scales are then gone. Outputs are unchanged in
        evaluation (up to rounding).

        Returns:
            list[str]: The names folded.
        """
        return []
