from .shapes import (SHAPE_CLASSES, classification_scene, render_scene,
                     write_classification_set)
from .shapes_classification import ShapesClassification

__all__ = [
    'SHAPE_CLASSES', 'ShapesClassification', 'classification_scene',
    'render_scene', 'write_classification_set'
]
