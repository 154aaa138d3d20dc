"""Data preprocessors of frame clips (MMPretrain's; need MMPretrain)."""
from sdt3_mm.registry import MODELS
from sdt3_mm.utils.optional_libraries import OptionalParts

OPTIONAL_PARTS = OptionalParts(__name__)
globals().update(
    OPTIONAL_PARTS.import_module('.frames_data_preprocessor', 'mmpretrain',
                                 MODELS, ['FramesDataPreprocessor']))

__all__ = [*OPTIONAL_PARTS.available]
__getattr__ = OPTIONAL_PARTS.missing_attribute
