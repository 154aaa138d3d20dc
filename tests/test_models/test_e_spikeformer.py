import math

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from sdt3_mm.models import ESpikeFormer, SFANeuron

# Backbone plus the 1000-class head (two heads, head and head_kd, for the
# large family), as the spec counts them.
SPEC_PARAMS = {
    't': 2_702_048,
    's': 5_105_608,
    'm': 10_023_112,
    'l': 18_987_504,
    '83m': 83_015_952,
    '171m': 171_740_714,
}


@pytest.mark.parametrize('arch', sorted(SPEC_PARAMS))
def test_parameter_counts_match_the_spec(arch):
    model = ESpikeFormer(arch=arch)
    channels = model.stage_channels[-1]
    heads = 2 if model.arch_settings['family'] == 'large' else 1
    params = sum(p.numel() for p in model.parameters())
    assert params + heads * (channels * 1000 + 1000) == SPEC_PARAMS[arch]


def test_base_taps_strides_and_channels():
    model = ESpikeFormer(arch='t', out_indices=(0, 1, 2, 3, 4)).eval()
    with torch.no_grad():
        taps = model(torch.randn(1, 3, 64, 96))
    assert [tuple(t.shape) for t in taps] == [(1, 12, 32, 48), (1, 24, 16, 24),
                                              (1, 48, 8, 12), (1, 96, 4, 6),
                                              (1, 128, 4, 6)]


def test_large_family_taps_and_backward():
    arch = dict(
        family='large', embed_dims=[16, 32, 64], depth=2, rep_conv=True)
    model = ESpikeFormer(arch=arch, out_indices=(0, 1, 2, 3))
    x = torch.randn(2, 3, 48, 48, requires_grad=True)
    taps = model(x)
    assert [tuple(t.shape) for t in taps] == [(2, 8, 24, 24), (2, 16, 12, 12),
                                              (2, 32, 6, 6), (2, 64, 3, 3)]
    sum(t.sum() for t in taps).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    neurons = [m for m in model.modules() if isinstance(m, SFANeuron)]
    assert {(n.rounding, n.bounds) for n in neurons} == {('half_up', 'open')}


@pytest.mark.parametrize('size', [(65, 97), (31, 17), (224, 225)])
def test_any_input_size_gives_ceil_sized_taps(size):
    model = ESpikeFormer(arch='t', out_indices=(0, 2, 4)).eval()
    with torch.no_grad():
        taps = model(torch.randn(1, 3, *size))
    for tap, stride in zip(taps, (2, 8, 16)):
        assert tap.shape[2:] == (math.ceil(size[0] / stride),
                                 math.ceil(size[1] / stride))


def test_out_indices_accept_negative_and_skip_unused_stages():
    model = ESpikeFormer(arch='t', out_indices=(1, -2))
    assert model.out_indices == (1, 3)
    calls = []
    model.stages[4].register_forward_hook(lambda *args: calls.append(1))
    model(torch.randn(1, 3, 32, 32))
    assert not calls


def test_drop_path_is_off_by_default_and_configurable():
    model = ESpikeFormer(arch='t')
    assert not any('DropPath' in type(m).__name__ for m in model.modules())
    model = ESpikeFormer(arch='t', drop_path_rate=0.1)
    rates = [
        m.drop_prob for m in model.modules() if type(m).__name__ == 'DropPath'
    ]
    assert len(rates) == 11 and rates[-1] == pytest.approx(0.1)


def test_custom_D_reaches_every_neuron():
    model = ESpikeFormer(arch='t', D=8)
    neurons = [m for m in model.modules() if isinstance(m, SFANeuron)]
    assert neurons and all(n.D == 8 and n.norm == 8 for n in neurons)


def test_frozen_stages_and_norm_eval():
    model = ESpikeFormer(arch='t', frozen_stages=2, norm_eval=False)
    model.train()
    for i in range(2):
        for module in (model.downsample_layers[i], model.stages[i]):
            assert not any(p.requires_grad for p in module.parameters())
            assert not module.training
    assert all(p.requires_grad for p in model.stages[2].parameters())
    assert model.stages[2].training

    model = ESpikeFormer(arch='t', norm_eval=True).train()
    assert not any(m.training
                   for m in model.modules() if isinstance(m, _BatchNorm))


@pytest.mark.parametrize('kwargs,error,message', [
    (dict(arch='xl'), KeyError, "unknown arch 'xl'"),
    (dict(arch=dict(family='huge', embed_dims=[1, 2, 3])), ValueError,
     'family must be'),
    (dict(arch=dict(family='large', embed_dims=[8, 16, 32])), ValueError,
     r"missing \['depth', 'rep_conv'\]"),
    (dict(arch=dict(family='base', embed_dims=[8, 16, 32])), ValueError,
     'has 4 embed_dims'),
    (dict(arch=dict(family='base', embed_dims=[8, 16, 36, 40])), ValueError,
     'not divisible by num_heads'),
    (dict(arch='t', out_indices=(0, 5)), IndexError, r'taps 0\.\.4'),
    (dict(arch='83m', out_indices=4), IndexError, r'taps 0\.\.3'),
    (dict(arch='t', frozen_stages=6), ValueError, 'frozen_stages'),
])
def test_bad_config_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        ESpikeFormer(**kwargs)


@pytest.mark.parametrize('shape', [(1, 1, 32, 32), (3, 32, 32)])
def test_wrong_input_shape_is_named(shape):
    model = ESpikeFormer(arch='t')
    message = r'N x 3 x H x W input \(or B x T x 3 x H x W frames\), got'
    with pytest.raises(ValueError, match=message):
        model(torch.randn(*shape))


@pytest.mark.parametrize('arch', [
    't',
    dict(family='large', embed_dims=[16, 32, 64], depth=2, rep_conv=True)
])
def test_zero_init_residual_makes_blocks_identities(arch):
    model = ESpikeFormer(arch=arch, zero_init_residual=True)
    model.init_weights()
    model.eval()
    x = torch.randn(1, model.stage_channels[3], 4, 4)
    with torch.no_grad():
        assert torch.equal(model.stages[3][0](x), x)
    default = ESpikeFormer(arch=arch)
    default.init_weights()
    with torch.no_grad():
        assert not torch.equal(default.eval().stages[3][0](x), x)


def test_layer_depth_for_layer_wise_lr_decay():
    model = ESpikeFormer(arch='83m')
    num_layers = 1 + 1 + 2 + 12 + 2
    assert model.get_layer_depth('backbone.downsample_layers.0.conv.weight',
                                 'backbone.') == (0, num_layers)
    assert model.get_layer_depth('backbone.stages.0.0.conv1.conv.weight',
                                 'backbone.') == (1, num_layers)
    # A downsampling conv shares its stage's first block depth.
    assert model.get_layer_depth('backbone.downsample_layers.3.bn.bias',
                                 'backbone.') == (5, num_layers)
    assert model.get_layer_depth('backbone.stages.3.11.layer_scale2',
                                 'backbone.') == (16, num_layers)
    assert model.get_layer_depth('head.fc.weight',
                                 'backbone.') == (17, num_layers)


@pytest.mark.parametrize('size', [(15, 64), (64, 8), (16, 64), (64, 16)])
def test_input_smaller_than_total_stride_is_named(size):
    """The smallest side is the total stride plus one (17), as for a
    program exported with dynamic sizes (tests/test_deployment)."""
    model = ESpikeFormer(arch='t')
    assert model.min_input_size == 17
    with pytest.raises(
            ValueError,
            match=r'smaller than the smallest it takes, 17 x 17 \(the '
            r'network\'s total stride 16 plus one'):
        model(torch.randn(1, 3, *size))


@pytest.mark.parametrize('bad', [float('nan'), float('inf'), -float('inf')])
def test_non_finite_input_is_refused(bad, monkeypatch):
    """The backbone reads no values on its forward; NaN and Inf are refused
    by sdt3_mm.analysis.check_finite, which the analysis tools call on
    every batch they feed a model."""
    import os.path as osp

    from sdt3_mm.analysis import check_finite
    x = torch.randn(1, 3, 32, 32)
    assert check_finite(x) is x
    x[0, 1, 5, 7] = bad
    with pytest.raises(
            ValueError,
            match=r'^the input contains NaN or Inf: .* the first at index '
            r'\(0, 1, 5, 7\)$'):
        check_finite(x)
    with pytest.raises(ValueError, match=r'^images\[1\] contains NaN or Inf'):
        check_finite([torch.zeros(2), x], 'images')
    # a tool: verify_spike_driven.py's verify() on a batch holding it
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    monkeypatch.syspath_prepend(osp.join(root, 'tools', 'analysis_tools'))
    from verify_spike_driven import verify
    model = ESpikeFormer(arch='t').eval()
    with pytest.raises(
            ValueError, match='the input of batch 0 contains NaN or Inf'):
        verify(model, None, [dict(inputs=x, data_samples=None)])


def test_docstring_example_runs():
    """The ``Examples:`` of ESpikeFormer's docstring run and print what
    they show (a doctest)."""
    import doctest

    import sdt3_mm.models.backbones.e_spikeformer as module
    finder = doctest.DocTestFinder()
    tests = finder.find(ESpikeFormer, 'ESpikeFormer', module=module)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted == 7
    assert result.failed == 0
