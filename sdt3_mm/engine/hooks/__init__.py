from .atomic_checkpoint_hook import AtomicCheckpointHook
from .event_visualization_hook import (EventVisualizationHook,
                                       render_event_frames)
from .firing_rate_hook import FiringRateHook
from .non_finite_check_hook import NonFiniteCheckHook
from .safe_checkpoint_hook import SafeCheckpointLoadingHook
from .strict_loading_hook import StrictLoadingHook

__all__ = [
    'AtomicCheckpointHook', 'FiringRateHook', 'NonFiniteCheckHook',
    'SafeCheckpointLoadingHook', 'StrictLoadingHook', 'EventVisualizationHook',
    'render_event_frames'
]
