import os.path as osp

import pytest

DATA = osp.join(osp.dirname(__file__), 'data')


@pytest.fixture(scope='session')
def official_fixture():
    """The reference case produced by the original E-SpikeFormer code."""
    import torch
    return torch.load(
        osp.join(DATA, 'e_spikeformer_s_official.pth'), weights_only=True)
