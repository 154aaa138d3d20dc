"""MMDetection's RoI heads with spikes (need MMDetection)."""
from sdt3_mm.registry import MODELS
from sdt3_mm.utils.optional_libraries import OptionalParts

OPTIONAL_PARTS = OptionalParts(__name__)
globals().update(
    OPTIONAL_PARTS.import_module(
        '.spike_bbox_head', 'mmdet', MODELS,
        ['SpikeConvFCBBoxHead', 'SpikeShared2FCBBoxHead']))
globals().update(
    OPTIONAL_PARTS.import_module('.spike_mask_head', 'mmdet', MODELS,
                                 ['SpikeFCNMaskHead']))

__all__ = [*OPTIONAL_PARTS.available]
__getattr__ = OPTIONAL_PARTS.missing_attribute
