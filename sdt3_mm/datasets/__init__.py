from .coco import CheckedCocoDataset
from .events import (EVENTS_DTYPE, BinarizeFrames, EventsToFrames,
                     EventStreamDataset, LoadEvents, RandomDropEvents,
                     RandomFlipEvents, ResizeFrames, as_events, check_count,
                     check_events, event_slices, frame_indices, load_events,
                     write_event_file, write_event_split)
from .hardvs import HARDVS, HARDVS_NUM_CLASSES
from .hardvs_transforms import (HARDVSDecode, LoadHARDVSClip, RandomFlipFrames,
                                ResizeCenterCropFrames)
from .shapes import (SHAPE_CLASSES, classification_scene, detection_scene,
                     render_scene, write_classification_set,
                     write_detection_set, write_segmentation_set)
from .shapes_classification import ShapesClassification
from .shapes_detection import ShapesDetection
from .shapes_events import EVENT_SHAPE_CLASSES, write_event_set
from .shapes_events_classification import ShapesEvents
from .shapes_segmentation import ShapesSegmentation
from .transforms import CheckSegLabelRange

__all__ = [
    'EVENTS_DTYPE', 'EVENT_SHAPE_CLASSES', 'BinarizeFrames',
    'EventStreamDataset', 'EventsToFrames', 'LoadEvents', 'RandomDropEvents',
    'RandomFlipEvents', 'ResizeFrames', 'as_events', 'check_count',
    'check_events', 'event_slices', 'frame_indices', 'load_events',
    'write_event_file', 'write_event_set', 'write_event_split', 'HARDVS',
    'HARDVS_NUM_CLASSES', 'HARDVSDecode', 'LoadHARDVSClip', 'RandomFlipFrames',
    'ResizeCenterCropFrames', 'SHAPE_CLASSES', 'CheckSegLabelRange',
    'ShapesClassification', 'ShapesDetection', 'ShapesEvents',
    'ShapesSegmentation', 'classification_scene', 'detection_scene',
    'render_scene', 'write_classification_set', 'write_detection_set',
    'write_segmentation_set', 'CheckedCocoDataset'
]
