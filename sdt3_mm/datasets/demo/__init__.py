"""The embedded demo data: synthetic textured shapes, drawn
deterministically, in the layouts the three libraries read, and simulated
event-camera recordings of them.

The demo configs name the data sets here (``sdt3_mm.ShapesClassification``,
``sdt3_mm.ShapesDetection``, ``sdt3_mm.ShapesSegmentation``,
``sdt3_mm.ShapesEvents``); each writes its set on first use with the
writers here (``tools/misc/make_demo_data.py`` writes them ahead of time).
No module of the library imports it but :mod:`sdt3_mm.datasets`, which
does so that ``custom_imports=['sdt3_mm']`` registers the data sets.
The writers need no OpenMMLab library; each data set needs the library
whose data set it extends (see :mod:`sdt3_mm.utils.optional_libraries`).
"""
from sdt3_mm.registry import DATASETS
from sdt3_mm.utils.optional_libraries import OptionalParts
from .shapes import (SEGMENTATION_COLORS, SHAPE_CLASSES, classification_scene,
                     detection_scene, render_scene, write_classification_set,
                     write_detection_set, write_segmentation_set)
from .shapes_events import EVENT_SHAPE_CLASSES, event_sample, write_event_set

OPTIONAL_PARTS = OptionalParts(__name__)
globals().update(
    OPTIONAL_PARTS.import_module('.shapes_classification', 'mmpretrain',
                                 DATASETS, ['ShapesClassification']))
globals().update(
    OPTIONAL_PARTS.import_module('.shapes_detection', 'mmdet', DATASETS,
                                 ['ShapesDetection']))
globals().update(
    OPTIONAL_PARTS.import_module('.shapes_events_classification',
                                 'mmpretrain', DATASETS, ['ShapesEvents']))
globals().update(
    OPTIONAL_PARTS.import_module('.shapes_segmentation', 'mmseg', DATASETS,
                                 ['ShapesSegmentation']))

__all__ = [
    'EVENT_SHAPE_CLASSES', 'SEGMENTATION_COLORS', 'SHAPE_CLASSES',
    'classification_scene', 'detection_scene', 'event_sample',
    'render_scene', 'write_classification_set', 'write_detection_set',
    'write_event_set', 'write_segmentation_set', *OPTIONAL_PARTS.available
]
__getattr__ = OPTIONAL_PARTS.missing_attribute
