"""High-level inference APIs for inputs MMPretrain's own inferencers do not
read (event recordings)."""
from .event_classification import (EventClassificationInferencer,
                                   inference_events)

__all__ = ['EventClassificationInferencer', 'inference_events']
