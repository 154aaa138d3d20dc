from .spike_cls_head import MetaSpikeClsHead, SpikeClsHead, SpikeKDClsHead

__all__ = ['MetaSpikeClsHead', 'SpikeClsHead', 'SpikeKDClsHead']
