"""HARDVS (300 human activities, DVS346 event camera) as an MMPretrain
dataset, read from the data set's pre-rendered event images.

Layout (the one the E-SpikeFormer reference, ``SDT_V3/DVS/Hardvs`` of
BICLab/Spike-Driven-Transformer-V3, reads)::

    data/hardvs/
    ├── list/
    │   ├── train_label.txt    # "<path> <ignored> <label>" a line
    │   └── test_label.txt
    └── rawframe/
        └── action_001/dvSave-2021_10_15_19_18_02/   # <path> of a line
            └── <clip>/                               # one sample each
                ├── 0000.png
                └── ...

A label line's ``<path>`` is relative to ``rawframe/``; every folder in it
is one sample of that line's label (the reference makes a sample of every
entry of the folder), a folder of greyscale PNG frames.
"""
import os
import os.path as osp

from mmpretrain.datasets import BaseDataset

from sdt3_mm.registry import DATASETS

#: Number of HARDVS classes; labels are 0 .. 299.
HARDVS_NUM_CLASSES = 300


@DATASETS.register_module()
class HARDVS(BaseDataset):
    """The HARDVS action set, a sample per folder of event images.

    Each line of the label file reads ``<path> <field> <label>`` (split on
    spaces as the reference does, the middle field unused). ``<path>``,
    relative to ``data_prefix``, names a folder; each of its sub-folders
    (sorted by name) is a sample with that label, holding the frames that
    :class:`~sdt3_mm.datasets.hardvs_transforms.LoadHARDVSClip` reads.
    Blank lines are skipped. The class names are ``class_0`` ..
    ``class_299``: the official lists give numbers only.

    Args:
        data_root (str): Root of the set. Defaults to ``''``.
        split (str): ``'train'`` or ``'test'`` (``'val'`` if a
            ``val_label.txt`` is present). Picks
            ``list/{split}_label.txt`` unless ``ann_file`` is given.
        ann_file (str, optional): Label file, relative to ``data_root``.
        data_prefix (str): Folder the label paths are relative to,
            relative to ``data_root``. Defaults to ``'rawframe'``.
        **kwargs: Other arguments of :class:`mmpretrain.datasets.
            BaseDataset` (``pipeline``, ``test_mode``, ...).

    Raises:
        ValueError: For a malformed line or a label outside 0 .. 299
            (naming the file and line), or a sample folder with no
            sub-folder.
        FileNotFoundError: For a label file or a sample folder that does
            not exist.
    """

    METAINFO = dict(
        classes=tuple(f'class_{i}' for i in range(HARDVS_NUM_CLASSES)))

    def __init__(self,
                 data_root='',
                 split='train',
                 ann_file=None,
                 data_prefix='rawframe',
                 **kwargs):
        if ann_file is None:
            if split not in ('train', 'test', 'val'):
                raise ValueError(f'HARDVS: split must be "train", "test" or '
                                 f'"val", got {split!r}')
            ann_file = f'list/{split}_label.txt'
        self.split = split
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=dict(img_path=data_prefix),
            **kwargs)

    def _parse_line(self, line, lineno):
        """``(path, label)`` of one line of the label file."""
        where = f'HARDVS: {self.ann_file}, line {lineno}'
        fields = line.split()
        if len(fields) != 3:
            raise ValueError(f'{where}: expected "<path> <field> <label>", '
                             f'got {line.rstrip()!r}')
        path, _, label = fields
        try:
            label = int(label)
        except ValueError:
            raise ValueError(f'{where}: label {label!r} is not an '
                             f'integer') from None
        if not 0 <= label < HARDVS_NUM_CLASSES:
            raise ValueError(f'{where}: label {label} is outside 0 .. '
                             f'{HARDVS_NUM_CLASSES - 1}')
        return path, label

    def load_data_list(self):
        """One entry per sample folder: ``frame_dir`` and ``gt_label``."""
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'HARDVS: label file {self.ann_file} does not exist')
        root = self.data_prefix['img_path']
        data_list = []
        with open(self.ann_file, encoding='utf-8') as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                path, label = self._parse_line(line, lineno)
                folder = osp.join(root, path)
                where = f'HARDVS: {self.ann_file}, line {lineno}'
                if not osp.isdir(folder):
                    raise FileNotFoundError(
                        f'{where}: folder {folder} does not exist')
                clips = sorted(
                    name for name in os.listdir(folder)
                    if osp.isdir(osp.join(folder, name)))
                if not clips:
                    raise ValueError(f'{where}: folder {folder} holds no '
                                     f'sample folder (of frames)')
                data_list.extend(
                    dict(frame_dir=osp.join(folder, clip), gt_label=label)
                    for clip in clips)
        return data_list
