from .spike_cls_head import SpikeClsHead, SpikeKDClsHead

__all__ = ['SpikeClsHead', 'SpikeKDClsHead']
