"""The data sets and transforms. The event and HARDVS transforms and the
segmentation label check need no OpenMMLab library but MMCV; each data set
needs the library whose base class it extends (see
:mod:`sdt3_mm.utils.optional_libraries`): where that library does not
import, its registry name and its name here raise an error naming the
package to install."""
from sdt3_mm.registry import DATASETS
from sdt3_mm.utils.optional_libraries import OptionalParts
from . import demo  # registers the demo data sets the demo configs name
from .events import (EVENTS_DTYPE, BinarizeFrames, EventsToFrames,
                     LoadEvents, RandomDropEvents, RandomFlipEvents,
                     ResizeFrames, as_events, check_count, check_events,
                     event_slices, frame_indices, load_events,
                     write_event_file, write_event_split)
from .hardvs_transforms import (HARDVSDecode, LoadHARDVSClip, RandomFlipFrames,
                                ResizeCenterCropFrames)
from .transforms import CheckSegLabelRange

OPTIONAL_PARTS = OptionalParts(__name__, include=(demo.OPTIONAL_PARTS, ))
globals().update(
    OPTIONAL_PARTS.import_module('.coco', 'mmdet', DATASETS,
                                 ['CheckedCocoDataset']))
globals().update(
    OPTIONAL_PARTS.import_module('.event_stream_dataset', 'mmpretrain',
                                 DATASETS, ['EventStreamDataset']))
globals().update(
    OPTIONAL_PARTS.import_module(
        '.hardvs',
        'mmpretrain',
        DATASETS, ['HARDVS'],
        also=['HARDVS_NUM_CLASSES']))

__all__ = [
    'EVENTS_DTYPE', 'BinarizeFrames', 'EventsToFrames', 'LoadEvents',
    'RandomDropEvents', 'RandomFlipEvents', 'ResizeFrames', 'as_events',
    'check_count', 'check_events', 'event_slices', 'frame_indices',
    'load_events', 'write_event_file', 'write_event_split', 'HARDVSDecode',
    'LoadHARDVSClip', 'RandomFlipFrames', 'ResizeCenterCropFrames',
    'CheckSegLabelRange', 'demo', *OPTIONAL_PARTS.available
]
__getattr__ = OPTIONAL_PARTS.missing_attribute
