"""Necks and heads keep their checkpoints' names and shapes.

The detection and segmentation configs' necks and heads must keep the
``state_dict`` recorded in ``tests/data/head_keys`` (from the code that
trained the demo checkpoints), and the classifier heads must take the
classifiers of every official checkpoint, converted, strictly.
"""
import glob
import importlib
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from sdt3_mm.models import MetaSpikeClsHead, SpikeClsHead, SpikeKDClsHead
from sdt3_mm.reliability import convert_official_state_dict

ROOT = osp.dirname(osp.dirname(osp.dirname(__file__)))
DATA = osp.join(ROOT, 'tests', 'data')
HEAD_KEYS = sorted(glob.glob(osp.join(DATA, 'head_keys', '*.txt')))
OFFICIAL_KEYS = sorted(glob.glob(osp.join(DATA, 'official_keys', '*.txt')))


def _read_key_list(path):
    """The header's first word (a config path, or a model name) and
    ``{key: shape}``, from a file of ``key<TAB>shape`` lines."""
    shapes, header = {}, None
    with open(path) as f:
        for line in f:
            if line.startswith('#'):
                header = header or line[1:].strip()
                continue
            if line.strip():
                key, shape = line.rstrip('\n').split('\t')
                shapes[key] = tuple(int(d) for d in re.findall(r'\d+', shape))
    return header, shapes


@pytest.mark.parametrize(
    'path', HEAD_KEYS, ids=[osp.basename(p) for p in HEAD_KEYS])
def test_config_necks_and_heads_keep_their_keys(path):
    header, expected = _read_key_list(path)
    config, params = re.match(r'(\S+): .*; params (\d+)$', header).groups()
    cfg = Config.fromfile(osp.join(ROOT, config))
    scope = cfg.default_scope
    registry = importlib.import_module(f'{scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(cfg.model)
    outside_backbone = ('backbone.', 'data_preprocessor.')
    built = {
        key: tuple(value.shape)
        for key, value in model.state_dict().items()
        if not key.startswith(outside_backbone)
    }
    assert list(built) == list(expected)
    assert built == expected
    assert sum(p.numel() for name, p in model.named_parameters()
               if not name.startswith(outside_backbone)) == int(params)


def _official_head(path):
    """The converted classifiers of an official key list, random values
    (the backbone's keys are left out: they convert on their own)."""
    _, shapes = _read_key_list(path)
    official = {
        key: torch.randn(shape)
        for key, shape in shapes.items() if key.startswith('head')
    }
    return convert_official_state_dict(official)[1]


@pytest.mark.parametrize(
    'path', OFFICIAL_KEYS, ids=[osp.basename(p) for p in OFFICIAL_KEYS])
def test_official_classifiers_load_strictly(path):
    state = _official_head(path)
    num_classes, channels = state['fc.weight'].shape
    if 'meta_spikeformer' in osp.basename(path):
        head = MetaSpikeClsHead(num_classes, channels)
    elif 'fc_kd.weight' in state:
        head = SpikeKDClsHead(num_classes, channels)
    else:
        head = SpikeClsHead(num_classes, channels)
    head.load_state_dict(state, strict=True)
    for key, value in head.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_meta_head_without_kd_has_no_second_classifier():
    """``kd=False`` builds no ``fc_kd``: the official kd classifier is an
    unexpected key, and the head's modules hold no empty entry."""
    path = osp.join(DATA, 'official_keys', 'keys_meta_spikeformer_8_384.txt')
    state = _official_head(path)
    num_classes, channels = state['fc.weight'].shape
    head = MetaSpikeClsHead(num_classes, channels, kd=False)
    assert head.fc_kd is None
    assert all(child is not None for child in head._modules.values())
    missing, unexpected = head.load_state_dict(state, strict=False)
    assert missing == [] and sorted(unexpected) == [
        'fc_kd.bias', 'fc_kd.weight'
    ]
