"""The demo classification set as an MMPretrain dataset."""
from mmpretrain.datasets import CustomDataset

from sdt3_mm.registry import DATASETS
from .shapes import SHAPE_CLASSES, write_classification_set


@DATASETS.register_module()
class ShapesClassification(CustomDataset):
    """Synthetic textured shapes in six classes, ImageNet folder layout.

    The set is written to ``data_root`` on first use (deterministically,
    see :func:`write_classification_set`) and read as a
    :class:`mmpretrain.datasets.CustomDataset` from then on.

    Args:
        data_root (str): Folder of the set.
        split (str): ``'train'`` or ``'val'``.
        num_train (int): Training images. Defaults to 1200.
        num_val (int): Held-out images. Defaults to 300.
        image_size (int): Image side in pixels. Defaults to 64.
        seed (int): Seed of the set. Defaults to 0.
        **kwargs: Other arguments of :class:`CustomDataset`
            (``pipeline``, ``test_mode``, ...).
    """

    METAINFO = dict(classes=SHAPE_CLASSES)

    def __init__(self,
                 data_root,
                 split='train',
                 num_train=1200,
                 num_val=300,
                 image_size=64,
                 seed=0,
                 **kwargs):
        if split not in ('train', 'val'):
            raise ValueError(f'ShapesClassification: split must be "train" '
                             f'or "val", got {split!r}')
        write_classification_set(data_root, num_train, num_val, image_size,
                                 seed)
        super().__init__(
            data_root=data_root,
            data_prefix=split,
            ann_file=f'meta/{split}.txt',
            **kwargs)
