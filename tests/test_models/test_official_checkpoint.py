"""Official names of every released size map onto ESpikeFormer's."""
import glob
import os.path as osp
import re

import pytest
import torch

from sdt3_mm.models import ESpikeFormer, MetaSpikeFormer
from sdt3_mm.reliability import convert_official_state_dict

KEY_DIR = osp.join(osp.dirname(osp.dirname(__file__)), 'data', 'official_keys')
ARCH_OF_FILE = {
    'e_spikeformer_s_5.1M.txt': 's',
    'e_spikeformer_m_10M.txt': 'm',
    'e_spikeformer_l_19M.txt': 'l',
    'e_spikeformer_83M.txt': '83m',
    'e_spikeformer_171M.txt': '171m',
    'keys_meta_spikeformer_8_384.txt': '31m',
    'keys_meta_spikeformer_8_512.txt': '55m',
    'keys_meta_spikeformer_8_768.txt': '124m',
}


def _official_state(path):
    state = {}
    with open(path) as f:
        for line in f:
            if line.startswith('#') or not line.strip():
                continue
            key, shape = line.rstrip('\n').split('\t')
            dims = [int(d) for d in re.findall(r'\d+', shape)]
            state[key] = torch.empty(dims)
    return state


def test_every_key_list_is_covered():
    files = sorted(osp.basename(p) for p in glob.glob(f'{KEY_DIR}/*.txt'))
    assert files == sorted(ARCH_OF_FILE)


@pytest.mark.parametrize('filename', sorted(ARCH_OF_FILE))
def test_official_keys_convert_to_the_model(filename):
    official = _official_state(osp.join(KEY_DIR, filename))
    backbone, head = convert_official_state_dict(official)
    arch = ARCH_OF_FILE[filename]
    backbone_type = MetaSpikeFormer if arch in MetaSpikeFormer.arch_zoo \
        else ESpikeFormer
    model = backbone_type(arch=arch)
    expected = model.state_dict()
    assert set(backbone) == set(expected)
    for key, value in backbone.items():
        assert value.shape == expected[key].shape, key
    channels = model.stage_channels[-1]
    expected_head = {'fc.weight': (1000, channels), 'fc.bias': (1000, )}
    if model.arch_settings['family'] != 'base':  # large and V2: kd heads
        expected_head.update({
            'fc_kd.weight': (1000, channels),
            'fc_kd.bias': (1000, )
        })
    assert {k: tuple(v.shape) for k, v in head.items()} == expected_head


def test_ddp_prefix_is_stripped():
    official = _official_state(osp.join(KEY_DIR, 'e_spikeformer_s_5.1M.txt'))
    wrapped = {f'module.{k}': v for k, v in official.items()}
    assert convert_official_state_dict(wrapped)[0].keys() == \
        convert_official_state_dict(official)[0].keys()


def test_unknown_official_key_is_an_error():
    official = _official_state(osp.join(KEY_DIR, 'e_spikeformer_s_5.1M.txt'))
    official['block3.0.attn.talking_heads.weight'] = torch.empty(1)
    with pytest.raises(KeyError, match='talking_heads'):
        convert_official_state_dict(official)
