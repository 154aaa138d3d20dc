"""StrictLoadingHook compares a checkpoint with the model the runner loads
it into (unwrapped from DDP and from a test-time-augmentation model), and
names every difference."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.model import BaseTTAModel
from torch import nn

from sdt3_mm.reliability import StrictLoadingHook


class _Net(nn.Module):

    def __init__(self, classes=6):
        super().__init__()
        self.backbone = nn.Conv2d(3, 4, 3)
        self.head = nn.Linear(4, classes)

    def test_step(self, data):  # what BaseTTAModel asks of its module
        return data


class _TTA(BaseTTAModel):

    def merge_preds(self, data_samples_list):
        return data_samples_list


def _checkpoint(model):
    return {'state_dict': model.state_dict(), 'meta': {}}


def test_tta_model_is_compared_through_the_model_it_wraps():
    hook = StrictLoadingHook()
    tta = _TTA(module=_Net())
    hook.after_load_checkpoint(SimpleNamespace(model=tta), _checkpoint(_Net()))
    with pytest.raises(RuntimeError, match=r'head.weight is \(6, 4\) in the '
                       r'checkpoint and \(10, 4\) in the model'):
        hook.after_load_checkpoint(
            SimpleNamespace(model=_TTA(module=_Net(10))),
            _checkpoint(_Net()))


def test_missing_and_unknown_keys_are_named_and_patterns_allow_them():
    model = _Net()
    state = _checkpoint(model)
    state['state_dict'] = dict(state['state_dict'])
    del state['state_dict']['backbone.bias']
    state['state_dict']['module.extra'] = torch.zeros(1)
    runner = SimpleNamespace(model=model)
    with pytest.raises(RuntimeError) as error:
        StrictLoadingHook().after_load_checkpoint(runner, state)
    assert 'missing from the checkpoint: backbone.bias' in str(error.value)
    assert 'not in the model: extra' in str(error.value)
    StrictLoadingHook(['backbone.bias', 'extra']).after_load_checkpoint(
        runner, state)


def test_what_mmengine_own_loader_read_is_checked_too():
    """Without sdt3_mm's loaders (a config without the safe hook), the hook
    still refuses a pickled list (before: AttributeError 'get' here) and
    NaN weights, naming load_from."""
    model = _Net()
    runner = SimpleNamespace(
        model=model, cfg=dict(load_from='work/epoch_3.pth'), work_dir='work')
    with pytest.raises(TypeError, match='work/epoch_3.pth holds a list'):
        StrictLoadingHook().after_load_checkpoint(runner, [1, 2])
    state = _checkpoint(model)
    state['state_dict']['head.bias'][1] = float('nan')
    with pytest.raises(
            ValueError,
            match=r'work/epoch_3.pth has non-finite '
            r'.*head.bias \(1 NaN of 6\)'):
        StrictLoadingHook().after_load_checkpoint(runner, state)
