"""init_cfg loading: every bad checkpoint gets an error that names it."""
import os.path as osp

import pytest
import torch

from sdt3_mm.models import ESpikeFormer


def _load(checkpoint, arch='t', prefix=None):
    model = ESpikeFormer(
        arch=arch,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix=prefix))
    model.init_weights()
    return model


@pytest.fixture
def saved_t(tmp_path):
    model = ESpikeFormer(arch='t')
    for param in model.parameters():
        torch.nn.init.normal_(param)
    path = str(tmp_path / 't.pth')
    torch.save(
        {
            'state_dict': {
                f'backbone.{k}': v
                for k, v in model.state_dict().items()
            },
            'meta': {}
        }, path)
    return model, path


def test_round_trip_with_and_without_explicit_prefix(saved_t):
    source, path = saved_t
    for prefix in (None, 'backbone.', 'backbone'):
        loaded = _load(path, prefix=prefix)
        for key, value in source.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value), key


def test_missing_path_is_named(tmp_path):
    path = str(tmp_path / 'nowhere.pth')
    with pytest.raises(FileNotFoundError, match='nowhere.pth does not exist'):
        _load(path)


def test_truncated_file_is_named(saved_t, tmp_path):
    _, path = saved_t
    broken = str(tmp_path / 'broken.pth')
    with open(path, 'rb') as f, open(broken, 'wb') as g:
        g.write(f.read()[:5000])
    with pytest.raises(
            RuntimeError, match='could not read checkpoint .*'
            'broken.pth'):
        _load(broken)


def test_wrong_prefix_is_named(saved_t):
    _, path = saved_t
    with pytest.raises(KeyError, match="starts with 'encoder.'"):
        _load(path, prefix='encoder.')


def test_missing_and_unexpected_keys_are_named(saved_t, tmp_path):
    source, _ = saved_t
    state = source.state_dict()
    del state['stages.2.1.conv2.bn.weight']
    state['stages.2.1.extra.weight'] = torch.zeros(1)
    path = str(tmp_path / 'partial.pth')
    torch.save(state, path)
    with pytest.raises(KeyError) as error:
        _load(path)
    message = str(error.value)
    assert '1 missing keys (stages.2.1.conv2.bn.weight)' in message
    assert '1 unexpected keys (stages.2.1.extra.weight)' in message


def test_checkpoint_of_another_size_names_both(official_fixture, tmp_path):
    path = str(tmp_path / 'official_s.pth')
    torch.save(official_fixture['state_dict'], path)
    with pytest.raises(ValueError) as error:
        _load(path, arch='l')
    message = str(error.value)
    assert "preset 's'" in message and "preset 'l'" in message
    assert '[16, 32, 64, 128, 192]' in message
    assert '[32, 64, 128, 256, 360]' in message


def test_tensor_of_another_shape_is_named(saved_t, tmp_path):
    source, _ = saved_t
    state = source.state_dict()
    state['stages.0.0.conv1.conv.weight'] = torch.zeros(1)
    path = str(tmp_path / 'shape.pth')
    torch.save(state, path)
    with pytest.raises(
            ValueError,
            match=r'stages\.0\.0\.conv1\.conv\.weight:'
            r' checkpoint \(1,\)'):
        _load(path)


def test_non_dict_checkpoint(tmp_path):
    path = str(tmp_path / 'tensor.pth')
    torch.save(torch.zeros(3), path)
    with pytest.raises(TypeError, match='holds a Tensor, not a state dict'):
        _load(osp.join(path))
