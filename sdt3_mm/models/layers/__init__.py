"""Layers that read spikes, and what the analysis tools know of them.

* :mod:`.spike_contract`: the blocks' contract beyond the neurons
  (:class:`SpikeProduct`, :class:`MergedLayers`, :class:`ConstantScales`)
  and the BatchNorm folding helpers; the analysis tools dispatch on these
  and on :class:`~sdt3_mm.models.neurons.SpikingNeuron` only.
* :mod:`.spike_code_ops`: convs and the attention product that keep the
  spikes' one-byte code for backward.
* :mod:`.blocks`: what both backbone families and the heads share
  (:class:`SpikeConvBN`, :class:`SpikeLinearAttention`).
* :mod:`.block_checkpoint`: activation checkpointing of a block with BNs.

Imports :mod:`sdt3_mm.models.neurons`; nothing of the backbones or heads.
"""
from .block_checkpoint import checkpoint_block
from .blocks import SpikeConvBN, SpikeLinearAttention
from .spike_code_ops import LinearAttentionProduct, SpikeConv1d, SpikeConv2d
from .spike_contract import (FOLDABLE_LAYERS, ConstantScale, ConstantScales,
                             MergedLayers, SpikeProduct, fold_norm_into,
                             norm_affine, scale_output_channels_)

__all__ = [
    'FOLDABLE_LAYERS', 'ConstantScale', 'ConstantScales',
    'LinearAttentionProduct', 'MergedLayers', 'SpikeConv1d', 'SpikeConv2d',
    'SpikeConvBN', 'SpikeLinearAttention', 'SpikeProduct', 'checkpoint_block',
    'fold_norm_into', 'norm_affine', 'scale_output_channels_'
]
