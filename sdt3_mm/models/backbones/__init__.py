from .e_spikeformer import ESpikeFormer
from .meta_spikeformer import MetaSpikeFormer

__all__ = ['ESpikeFormer', 'MetaSpikeFormer']
