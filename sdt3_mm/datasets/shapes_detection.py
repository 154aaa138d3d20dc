"""The demo detection set as an MMDetection COCO dataset."""
import os.path as osp

from mmdet.datasets import CocoDataset

from sdt3_mm.registry import DATASETS
from .shapes import SHAPE_CLASSES, write_detection_set


@DATASETS.register_module()
class ShapesDetection(CocoDataset):
    """Synthetic scenes of up to ``max_objects`` textured shapes in six
    classes, with boxes and polygon masks, in COCO layout.

    The set is written to ``data_root`` on first use (deterministically,
    see :func:`write_detection_set`) and read as a
    :class:`mmdet.datasets.CocoDataset` from then on:
    ``annotations/instances_{split}.json`` and images in ``{split}/``.
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
        ValueError: If no image is left to read: the annotation file lists
            no images, or ``filter_cfg`` drops them all (with
            ``filter_empty_gt``, images without an annotation). The
            message names the file and what is empty.
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

    def filter_data(self):
        """Filter as :class:`CocoDataset`, refusing an empty result.

        With no image left, MMEngine's serialisation would fail with
        ``need at least one array to concatenate``, naming neither the
        annotation file nor what it lacks.
        """
        data_list = super().filter_data()
        if data_list:
            return data_list
        prefix = f'{type(self).__name__}: annotation file {self.ann_file}'
        if not self.data_list:
            raise ValueError(f'{prefix} lists no images ("images" is empty)')
        num_objects = sum(len(info['instances']) for info in self.data_list)
        if num_objects == 0:
            found = (f'{len(self.data_list)} images but no annotations '
                     f'("annotations" is empty)')
        else:
            found = f'{len(self.data_list)} images, {num_objects} annotations'
        raise ValueError(
            f'{prefix} lists {found}, and filter_cfg={self.filter_cfg} drops '
            f'every image (filter_empty_gt drops the images without an '
            f'annotation, min_size the smaller ones): no image is left')
