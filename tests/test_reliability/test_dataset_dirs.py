"""A config whose dataset directory is missing or empty fails clearly."""
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(
    ROOT, 'configs/e_spikeformer/'
    'e-spikeformer-s_8xb256-lamb-200e_in1k.py')


def test_imagenet_config_with_missing_data_root(tmp_path):
    from mmpretrain.registry import DATASETS
    dataset_cfg = Config.fromfile(CONFIG).train_dataloader.dataset
    dataset_cfg.data_root = str(tmp_path / 'imagenet')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        with pytest.raises(
                FileNotFoundError, match=str(tmp_path / 'imagenet' / 'train')):
            DATASETS.build(dataset_cfg)


def test_imagenet_config_with_empty_data_root(tmp_path):
    from mmpretrain.registry import DATASETS
    (tmp_path / 'imagenet' / 'train').mkdir(parents=True)
    dataset_cfg = Config.fromfile(CONFIG).train_dataloader.dataset
    dataset_cfg.data_root = str(tmp_path / 'imagenet')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        # MMPretrain's own message; it names the count, not the path.
        with pytest.raises(
                AssertionError, match=r'number of subfolders \(0\)'):
            DATASETS.build(dataset_cfg)
