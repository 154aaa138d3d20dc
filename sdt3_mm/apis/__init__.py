"""High-level inference APIs for inputs MMPretrain's own inferencers do not
read (event recordings); they need MMPretrain."""
from sdt3_mm.utils.optional_libraries import OptionalParts

OPTIONAL_PARTS = OptionalParts(__name__)
globals().update(
    OPTIONAL_PARTS.import_module(
        '.event_classification',
        'mmpretrain',
        also=['EventClassificationInferencer', 'inference_events']))

__all__ = [*OPTIONAL_PARTS.available]
__getattr__ = OPTIONAL_PARTS.missing_attribute
