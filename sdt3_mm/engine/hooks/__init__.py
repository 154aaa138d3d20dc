from .event_visualization_hook import (EventVisualizationHook,
                                       render_event_frames)
from .firing_rate_hook import FiringRateHook

__all__ = ['FiringRateHook', 'EventVisualizationHook', 'render_event_frames']
