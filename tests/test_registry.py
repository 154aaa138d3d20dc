"""Our modules resolve from MMPretrain, MMDetection and MMSegmentation."""
import subprocess
import sys

import pytest
import torch
from mmengine.registry import DefaultScope

# Run in a fresh interpreter that never imports sdt3_mm itself: the
# ``sdt3_mm.`` prefix alone must find our registry.
BUILD_FROM = """
import torch
from mmengine.registry import init_default_scope
from {lib}.registry import MODELS
init_default_scope('{scope}')
model = MODELS.build(dict(type='sdt3_mm.ESpikeFormer', arch='t',
                          out_indices=(1, 2, 3, 4)))
assert type(model).__module__.startswith('sdt3_mm.'), type(model)
taps = model.eval()(torch.randn(1, 3, 64, 64))
print([tuple(t.shape) for t in taps])
"""


@pytest.mark.parametrize('lib,scope', [('mmpretrain', 'mmpretrain'),
                                       ('mmdet', 'mmdet'), ('mmseg', 'mmseg')])
def test_prefixed_type_builds_in_a_fresh_process(lib, scope):
    result = subprocess.run(
        [sys.executable, '-c',
         BUILD_FROM.format(lib=lib, scope=scope)],
        capture_output=True,
        text=True)
    assert result.returncode == 0, result.stderr
    assert '(1, 24, 16, 16), (1, 48, 8, 8), (1, 96, 4, 4), (1, 128, 4, 4)' \
        in result.stdout


def test_image_classifier_with_our_backbone():
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(
            dict(
                type='ImageClassifier',
                backbone=dict(type='sdt3_mm.ESpikeFormer', arch='t'),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(
                    type='LinearClsHead', num_classes=7, in_channels=128)))
    logits = model(torch.randn(2, 3, 32, 32), mode='tensor')
    assert logits.shape == (2, 7)


def test_detector_neck_on_our_taps():
    from mmdet.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmdet'):
        backbone = MODELS.build(
            dict(
                type='sdt3_mm.ESpikeFormer',
                arch='t',
                out_indices=(1, 2, 3, 4)))
        neck = MODELS.build(
            dict(
                type='FPN',
                in_channels=[24, 48, 96, 128],
                out_channels=32,
                num_outs=5))
    outs = neck(backbone(torch.randn(1, 3, 64, 64)))
    assert [o.shape[1] for o in outs] == [32] * 5


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
def test_internal_neurons_build_under_any_scope(scope):
    from mmengine.registry import MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(dict(type='sdt3_mm.ESpikeFormer', arch='t'))
    assert type(model.stages[0][0].conv1.neuron).__name__ == 'SFANeuron'
