"""Hooks: the firing-rate hook (any library) and the event visualisation
hook (MMPretrain's; needs MMPretrain)."""
from sdt3_mm.registry import HOOKS
from sdt3_mm.utils.optional_libraries import OptionalParts
from .firing_rate_hook import FiringRateHook

OPTIONAL_PARTS = OptionalParts(__name__)
globals().update(
    OPTIONAL_PARTS.import_module(
        '.event_visualization_hook',
        'mmpretrain',
        HOOKS, ['EventVisualizationHook'],
        also=['render_event_frames']))

__all__ = ['FiringRateHook', *OPTIONAL_PARTS.available]
__getattr__ = OPTIONAL_PARTS.missing_attribute
