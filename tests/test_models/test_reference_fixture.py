"""The reference case of the original E-SpikeFormer code, reproduced
(``official_fixture``: seeded, and the old full-size case when
``SDT3_REFERENCE_DIR`` is set)."""
import os.path as osp
import subprocess
import sys

import pytest
import torch

from sdt3_mm.models import ESpikeFormer, SFANeuron

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONVERTER = osp.join(ROOT, 'tools', 'model_converters',
                     'sdt3_official_to_mm.py')
STAGES = ['ConvBlock1_1', 'ConvBlock1_2', 'ConvBlock2_2', 'block3', 'block4']


def _backbone(checkpoint, prefix=None):
    model = ESpikeFormer(
        arch='s',
        out_indices=(0, 1, 2, 3, 4),
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix=prefix))
    model.init_weights()
    return model


def _classify(tap, weight, bias):
    """The spec's classifier: average pool, neuron with norm 1, linear."""
    pooled = tap.flatten(2).mean(2)
    return torch.nn.functional.linear(SFANeuron(norm=1)(pooled), weight, bias)


def test_eval_taps_reproduce_the_reference(official_fixture):
    model = _backbone(official_fixture['checkpoint']).eval()
    with torch.no_grad():
        taps = model(official_fixture['input'])
    for name, tap in zip(STAGES, taps):
        expected = official_fixture['eval_stage_outputs'][name]
        assert tap.shape == expected.shape
        assert (tap - expected).abs().max() <= 1e-4, name
    state = official_fixture['state_dict']
    logits = _classify(taps[-1], state['head.weight'], state['head.bias'])
    assert (logits - official_fixture['eval_logits']).abs().max() <= 1e-4


def test_train_mode_logits_and_input_gradient(official_fixture):
    model = _backbone(official_fixture['checkpoint']).train()
    x = official_fixture['input'].clone().requires_grad_()
    state = official_fixture['state_dict']
    logits = _classify(model(x)[-1], state['head.weight'], state['head.bias'])
    assert (logits - official_fixture['train_logits']).abs().max() <= 1e-4
    logits.sum().backward()
    expected = official_fixture['train_input_grad']
    scale = expected.abs().max()
    assert (x.grad - expected).abs().max() <= 1e-4 * scale


def test_converted_checkpoint_loads_with_prefix(official_fixture, tmp_path):
    dst = str(tmp_path / 'converted.pth')
    result = subprocess.run(
        [sys.executable, CONVERTER, official_fixture['checkpoint'], dst],
                            capture_output=True,
                            text=True,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert 'stage widths [16, 32, 64, 128, 192]' in result.stdout
    converted = torch.load(dst, weights_only=True)['state_dict']
    assert {'head.fc.weight', 'head.fc.bias'} <= set(converted)
    assert len(converted) == len(official_fixture['state_dict'])
    model = ESpikeFormer(
        arch='s',
        out_indices=(4, ),
        init_cfg=dict(type='Pretrained', checkpoint=dst, prefix='backbone.'))
    model.init_weights()
    with torch.no_grad():
        tap, = model.eval()(official_fixture['input'])
    expected = official_fixture['eval_stage_outputs']['block4']
    assert (tap - expected).abs().max() <= 1e-4


@pytest.mark.parametrize('wrapper,prefix', [('model', None),
                                            ('state_dict', None),
                                            ('model', 'backbone.')])
def test_official_checkpoint_under_a_key(official_fixture, tmp_path, wrapper,
                                         prefix):
    path = str(tmp_path / 'wrapped.pth')
    torch.save({wrapper: official_fixture['state_dict'], 'epoch': 3}, path)
    model = _backbone(path, prefix).eval()
    with torch.no_grad():
        taps = model(official_fixture['input'][:1])
    expected = official_fixture['eval_stage_outputs']['block3'][:1]
    assert (taps[3] - expected).abs().max() <= 1e-4
