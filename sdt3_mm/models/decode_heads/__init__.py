"""MMSegmentation's decode heads with spikes (need MMSegmentation)."""
from sdt3_mm.registry import MODELS
from sdt3_mm.utils.optional_libraries import OptionalParts

OPTIONAL_PARTS = OptionalParts(__name__)
globals().update(
    OPTIONAL_PARTS.import_module('.spike_fpn_head', 'mmseg', MODELS,
                                 ['SpikeFPNHead']))

__all__ = [*OPTIONAL_PARTS.available]
__getattr__ = OPTIONAL_PARTS.missing_attribute
