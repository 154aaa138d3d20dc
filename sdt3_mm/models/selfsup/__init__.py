"""Self-supervised pre-training: sparse masking of the convolutions (plain
torch) and the spiking MAE (MMPretrain's; needs MMPretrain)."""
from sdt3_mm.registry import MODELS
from sdt3_mm.utils.optional_libraries import OptionalParts
from .sparse_masking import (MaskConvOutput, MaskedBatchNorm1d,
                             MaskedBatchNorm2d, SparseMasking,
                             sparse_batch_norm)

OPTIONAL_PARTS = OptionalParts(__name__)
globals().update(
    OPTIONAL_PARTS.import_module('.spike_mae', 'mmpretrain', MODELS,
                                 ['SpikeMAE', 'SpikeMAEDecoder']))

__all__ = [
    'MaskConvOutput', 'MaskedBatchNorm1d', 'MaskedBatchNorm2d',
    'SparseMasking', 'sparse_batch_norm', *OPTIONAL_PARTS.available
]
__getattr__ = OPTIONAL_PARTS.missing_attribute
