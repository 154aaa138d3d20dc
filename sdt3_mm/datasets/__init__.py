from .shapes import (SHAPE_CLASSES, classification_scene, detection_scene,
                     render_scene, write_classification_set,
                     write_detection_set)
from .shapes_classification import ShapesClassification
from .shapes_detection import ShapesDetection

__all__ = [
    'SHAPE_CLASSES', 'ShapesClassification', 'ShapesDetection',
    'classification_scene', 'detection_scene', 'render_scene',
    'write_classification_set', 'write_detection_set'
]
