from . import demo  # registers the demo data sets the demo configs name
from .coco import CheckedCocoDataset
from .events import (EVENTS_DTYPE, BinarizeFrames, EventsToFrames,
                     EventStreamDataset, LoadEvents, RandomDropEvents,
                     RandomFlipEvents, ResizeFrames, as_events, check_count,
                     check_events, event_slices, frame_indices, load_events,
                     write_event_file, write_event_split)
from .hardvs import HARDVS, HARDVS_NUM_CLASSES
from .hardvs_transforms import (HARDVSDecode, LoadHARDVSClip, RandomFlipFrames,
                                ResizeCenterCropFrames)
from .transforms import CheckSegLabelRange

__all__ = [
    'EVENTS_DTYPE', 'BinarizeFrames', 'EventStreamDataset', 'EventsToFrames',
    'LoadEvents', 'RandomDropEvents', 'RandomFlipEvents', 'ResizeFrames',
    'as_events', 'check_count', 'check_events', 'event_slices',
    'frame_indices', 'load_events', 'write_event_file', 'write_event_split',
    'HARDVS', 'HARDVS_NUM_CLASSES', 'HARDVSDecode', 'LoadHARDVSClip',
    'RandomFlipFrames', 'ResizeCenterCropFrames', 'CheckSegLabelRange',
    'CheckedCocoDataset', 'demo'
]
