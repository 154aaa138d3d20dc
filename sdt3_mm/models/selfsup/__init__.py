from .sparse_masking import (MaskConvOutput, MaskedBatchNorm1d,
                             MaskedBatchNorm2d, SparseMasking,
                             sparse_batch_norm)
from .spike_mae import SpikeMAE, SpikeMAEDecoder

__all__ = [
    'MaskConvOutput', 'MaskedBatchNorm1d', 'MaskedBatchNorm2d',
    'SparseMasking', 'SpikeMAE', 'SpikeMAEDecoder', 'sparse_batch_norm'
]
