"""Event recordings as an MMPretrain data set (needs MMPretrain; the
reading and the transforms, in :mod:`.events`, do not)."""
from mmpretrain.datasets import CustomDataset

from sdt3_mm.registry import DATASETS


@DATASETS.register_module()
class EventStreamDataset(CustomDataset):
    """Event recordings, one ``.npz`` file each, as an MMPretrain data set.

    MMPretrain's :class:`~mmpretrain.datasets.CustomDataset` reading
    ``.npz`` files: either a folder per class (``data_prefix/<class>/x.npz``,
    classes in sorted folder order) or an annotation file of lines
    ``<path relative to data_prefix> <label>``. Each file holds the events
    of one recording (see :func:`~sdt3_mm.datasets.load_events`); :class:`~sdt3_mm.datasets.LoadEvents` reads
    them. ``tools/dataset_converters/tonic_to_npz.py`` writes tonic's data
    sets (DVS Gesture, N-MNIST, CIFAR10-DVS, ...) in this layout.

    Args:
        data_root (str): Root of the set.
        data_prefix (str): Folder of the files, relative to ``data_root``.
        ann_file (str): Annotation file; empty for the folder layout.
        extensions (Sequence[str]): File endings read. Defaults to
            ``('.npz', )``.
        **kwargs: Other arguments of :class:`CustomDataset` (``classes``
            through ``metainfo``, ``pipeline``, ``test_mode``, ...).
    """

    def __init__(self,
                 data_root='',
                 data_prefix='',
                 ann_file='',
                 extensions=('.npz', ),
                 **kwargs):
        super().__init__(
            data_root=data_root,
            data_prefix=data_prefix,
            ann_file=ann_file,
            extensions=extensions,
            **kwargs)
