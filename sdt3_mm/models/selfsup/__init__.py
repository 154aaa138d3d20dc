from .sparse_masking import SparseMasking, sparse_batch_norm
from .spike_mae import SpikeMAE, SpikeMAEDecoder

__all__ = ['SparseMasking', 'SpikeMAE', 'SpikeMAEDecoder', 'sparse_batch_norm']
