"""The demo segmentation set as an MMSegmentation dataset."""
from mmseg.datasets import BaseSegDataset

from sdt3_mm.registry import DATASETS
from .shapes import SEGMENTATION_COLORS, SHAPE_CLASSES, write_segmentation_set


@DATASETS.register_module()
class ShapesSegmentation(BaseSegDataset):
    """Synthetic scenes of up to ``max_objects`` textured shapes, labelled
    per pixel with the background and six shape classes, in ADE20K layout.

    The set is written to ``data_root`` on first use (deterministically,
    see :func:`write_segmentation_set`) and read as a
    :class:`mmseg.datasets.BaseSegDataset` from then on: images in
    ``images/{training,validation}``, label maps (0 the background,
    ``1 + class`` on a shape) in ``annotations/{training,validation}``.
    Unlike ADE20K, label 0 is a class, not "other": nothing is ignored.

    Args:
        data_root (str): Folder of the set.
        split (str): ``'train'`` or ``'val'``.
        num_train (int): Training images. Defaults to 600.
        num_val (int): Held-out images. Defaults to 100.
        image_size (int): Image side in pixels. Defaults to 128.
        max_objects (int): Most shapes per image. Defaults to 4.
        seed (int): Seed of the set. Defaults to 0.
        **kwargs: Other arguments of :class:`BaseSegDataset` (``pipeline``,
            ``test_mode``, ...).
    """

    METAINFO = dict(
        classes=('background', ) + SHAPE_CLASSES,
        palette=[(0, 0, 0)] + list(SEGMENTATION_COLORS))

    def __init__(self,
                 data_root,
                 split='train',
                 num_train=600,
                 num_val=100,
                 image_size=128,
                 max_objects=4,
                 seed=0,
                 **kwargs):
        folders = dict(train='training', val='validation')
        if split not in folders:
            raise ValueError(f'ShapesSegmentation: split must be "train" or '
                             f'"val", got {split!r}')
        write_segmentation_set(data_root, num_train, num_val, image_size, seed,
                               max_objects)
        super().__init__(
            data_root=data_root,
            data_prefix=dict(
                img_path=f'images/{folders[split]}',
                seg_map_path=f'annotations/{folders[split]}'),
            img_suffix='.png',
            seg_map_suffix='.png',
            reduce_zero_label=False,
            **kwargs)
