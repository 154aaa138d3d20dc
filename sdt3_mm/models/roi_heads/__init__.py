from .spike_bbox_head import SpikeConvFCBBoxHead, SpikeShared2FCBBoxHead
from .spike_mask_head import SpikeFCNMaskHead

__all__ = ['SpikeConvFCBBoxHead', 'SpikeFCNMaskHead', 'SpikeShared2FCBBoxHead']
