"""The embedded demo data: synthetic textured shapes, drawn
deterministically, in the layouts the three libraries read, and simulated
event-camera recordings of them.

The demo configs name the data sets here (``sdt3_mm.ShapesClassification``,
``sdt3_mm.ShapesDetection``, ``sdt3_mm.ShapesSegmentation``,
``sdt3_mm.ShapesEvents``); each writes its set on first use with the
writers here (``tools/misc/make_demo_data.py`` writes them ahead of time).
No module of the library imports it but :mod:`sdt3_mm.datasets`, which
does so that ``custom_imports=['sdt3_mm']`` registers the data sets.
"""
from .shapes import (SEGMENTATION_COLORS, SHAPE_CLASSES, classification_scene,
                     detection_scene, render_scene, write_classification_set,
                     write_detection_set, write_segmentation_set)
from .shapes_classification import ShapesClassification
from .shapes_detection import ShapesDetection
from .shapes_events import EVENT_SHAPE_CLASSES, event_sample, write_event_set
from .shapes_events_classification import ShapesEvents
from .shapes_segmentation import ShapesSegmentation

__all__ = [
    'EVENT_SHAPE_CLASSES', 'SEGMENTATION_COLORS', 'SHAPE_CLASSES',
    'ShapesClassification', 'ShapesDetection', 'ShapesEvents',
    'ShapesSegmentation', 'classification_scene', 'detection_scene',
    'event_sample', 'render_scene', 'write_classification_set',
    'write_detection_set', 'write_event_set', 'write_segmentation_set'
]
