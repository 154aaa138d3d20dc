"""The demo detection set as an MMDetection COCO dataset."""
import os.path as osp

from sdt3_mm.datasets.coco import CheckedCocoDataset
from sdt3_mm.registry import DATASETS
from .shapes import SHAPE_CLASSES, write_detection_set


@DATASETS.register_module()
class ShapesDetection(CheckedCocoDataset):
    """Synthetic scenes of up to ``max_objects`` textured shapes in six
    classes, with boxes and polygon masks, in COCO layout.

    The set is written to ``data_root`` on first use (deterministically,
    see :func:`write_detection_set`) and read as a
    :class:`mmdet.datasets.CocoDataset` from then on, with the checks of
    :class:`CheckedCocoDataset`: ``annotations/instances_{split}.json`` and
    images in ``{split}/``.
    MMDetection's ``CocoMetric`` evaluates it with that annotation file.

    Args:
        data_root (str): Folder of the set.
        split (str): ``'train'`` or ``'val'``.
        num_train (int): Training images. Defaults to 600.
        num_val (int): Held-out images. Defaults to 100.
        image_size (int): Image side in pixels. Defaults to 128.
        max_objects (int): Most shapes per image. Defaults to 4.
        seed (int): Seed of the set. Defaults to 0.
        **kwargs: Other arguments of :class:`CocoDataset` (``pipeline``,
            ``test_mode``, ``filter_cfg``, ...).

    Raises:
        ValueError: If the annotation file is empty or not JSON, lacks
            categories or the classes' categories, or leaves no image to
            read (see :class:`CheckedCocoDataset`); the message names the
            file and what is wrong.
    """

    METAINFO = dict(
        classes=SHAPE_CLASSES,
        palette=[(220, 20, 60), (0, 128, 255), (0, 170, 30), (255, 170, 0),
                 (160, 0, 220), (0, 200, 200)])

    def __init__(self,
                 data_root,
                 split='train',
                 num_train=600,
                 num_val=100,
                 image_size=128,
                 max_objects=4,
                 seed=0,
                 **kwargs):
        if split not in ('train', 'val'):
            raise ValueError(f'ShapesDetection: split must be "train" or '
                             f'"val", got {split!r}')
        write_detection_set(data_root, num_train, num_val, image_size, seed,
                            max_objects)
        super().__init__(
            data_root=data_root,
            ann_file=osp.join('annotations', f'instances_{split}.json'),
            data_prefix=dict(img=f'{split}/'),
            **kwargs)
