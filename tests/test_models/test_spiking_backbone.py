"""What the spiking backbones share: time steps, static input checks,
attention settings from the config."""
import numpy as np
import pytest
import torch

from sdt3_mm.models import ESpikeFormer, MetaSpikeFormer, MultiStepLIFNeuron
from sdt3_mm.models.layers.blocks import SpikeLinearAttention

LIF = dict(type='MultiStepLIFNeuron', T=4)


def test_time_steps_come_from_the_neurons():
    """The neurons are the one source of T: no time_steps argument to
    reconcile with them."""
    assert ESpikeFormer(arch='t').time_steps == 1
    assert ESpikeFormer(arch='t', neuron_cfg=LIF).time_steps == 4
    assert MetaSpikeFormer('15m', T=3).time_steps == 3
    with pytest.raises(TypeError, match='time_steps'):
        ESpikeFormer(arch='t', neuron_cfg=LIF, time_steps=4)


def test_neurons_of_different_time_steps_are_refused():
    # A 4-step neuron among stateless ones would read a batch of 8 as 4
    # time steps of 2 images.
    model = ESpikeFormer(arch='t')
    model.stages[3][0].attn.attn_neuron = MultiStepLIFNeuron(T=4)
    with pytest.raises(
            ValueError,
            match=r'neuron stages\.3\.0\.attn\.attn_neuron '
            r'\(MultiStepLIFNeuron\) runs over 4 time steps, but neuron '
            r'downsample_layers\.1\.neuron \(SFANeuron\) over 1'):
        model.take_time_steps_from_neurons()


def test_time_steps_fold_into_the_batch_and_average():
    torch.manual_seed(0)
    model = ESpikeFormer(arch='t', neuron_cfg=LIF, out_indices=(2, 4)).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        taps = model(x)
        model.average_time = False
        deep = model(x)
    assert [tuple(t.shape) for t in taps] == [(3, 48, 4, 4), (3, 128, 2, 2)]
    assert [t.shape[0] for t in deep] == [12, 12]
    for tap, steps in zip(taps, deep):
        torch.testing.assert_close(tap,
                                   steps.reshape(4, 3, *tap.shape[1:]).mean(0))


def _attentions(model):
    return [m for m in model.modules() if isinstance(m, SpikeLinearAttention)]


def test_attention_settings_from_the_config():
    default = _attentions(ESpikeFormer(arch='t'))[0]
    # The reference's: 2 / sqrt(head_dim), value width 4 x C.
    assert default.scale == 2 * (96 // 8)**-0.5
    assert default.head_dims == (12, 48)
    changed = _attentions(
        ESpikeFormer(arch='t', attn_cfg=dict(scale=0.5, value_ratio=2)))[0]
    assert changed.scale == 0.5 and changed.head_dims == (12, 24)
    large = ESpikeFormer(
        arch=dict(
            family='large', embed_dims=[16, 32, 64], depth=1, rep_conv=False),
        attn_cfg=dict(hidden_ratio=2))
    attention = _attentions(large)[0]
    assert attention.scale == 0.125
    assert attention.q.conv.conv1.out_channels == 128
    meta = MetaSpikeFormer(
        arch=dict(family='meta', embed_dims=[16, 32, 64, 64]),
        attn_cfg=dict(scale=0.25))
    assert {a.scale for a in _attentions(meta)} == {0.25}


@pytest.mark.parametrize('attn_cfg,message', [
    (dict(hidden_ratio=2), r"attn_cfg keys \['hidden_ratio'\] are not "
     'settings of the base'),
    (dict(scale=0), 'scale must be a positive number'),
    (dict(value_ratio='4'), 'value_ratio must be a positive number'),
])
def test_bad_attention_settings_are_named(attn_cfg, message):
    with pytest.raises(ValueError, match=message):
        ESpikeFormer(arch='t', attn_cfg=attn_cfg)


def test_stage_layout_is_the_one_derivation_of_taps():
    for name, preset in ESpikeFormer.arch_zoo.items():
        depths, channels, strides = ESpikeFormer.stage_layout(preset)
        model = ESpikeFormer(arch=name)
        assert [len(stage) for stage in model.stages] == depths
        assert model.stage_channels == channels
        assert model.total_stride == 16 and len(strides) == model.num_taps


def test_contracts_name_what_a_subclass_lacks():
    from sdt3_mm.models.backbones.spiking_backbone import SpikingBackbone
    from sdt3_mm.models.neurons.spiking_neuron import SpikingNeuron

    class NoPlainPath(SpikingNeuron):

        def fire_with_code(self, x):
            return x, None

    class NoTaps(SpikingBackbone):
        pass

    with pytest.raises(TypeError, match='fire_plain'):
        NoPlainPath()
    with pytest.raises(TypeError, match='forward_taps'):
        NoTaps()


META = dict(arch=dict(family='meta', embed_dims=[16, 32, 64, 64]), T=2)


@pytest.mark.parametrize('cls,kwargs', [(ESpikeFormer, dict(arch='t')),
                                        (MetaSpikeFormer, META)])
@pytest.mark.parametrize('in_channels,error,shown', [
    (0, ValueError, '0'),
    (-3, ValueError, '-3'),
    # numpy 2 writes the value as np.int64(-1), numpy 1 as -1.
    (np.int64(-1), ValueError, r'(np\.int64\()?-1'),
    (2.0, TypeError, r'2\.0 \(float\)'),
    ('3', TypeError, r"'3' \(str\)"),
    (True, TypeError, r'True \(bool\)'),
    (None, TypeError, r'None \(NoneType\)'),
])
def test_bad_in_channels_is_named_when_built(cls, kwargs, in_channels, error,
                                             shown):
    """0 used to build and fail at the first forward, -3 in torch's own
    argument check; both families refuse them (and non-integers) when
    built, naming the argument."""
    with pytest.raises(
            error,
            match=rf'^{cls.__name__}: in_channels \(the input\'s channels\) '
            rf'must be a positive integer, got {shown}'):
        cls(in_channels=in_channels, **kwargs)


@pytest.mark.parametrize('cls,kwargs', [(ESpikeFormer, dict(arch='t')),
                                        (MetaSpikeFormer, META)])
def test_numpy_in_channels_is_taken_as_an_int(cls, kwargs):
    model = cls(in_channels=np.int64(2), out_indices=(4, ), **kwargs).eval()
    assert type(model.in_channels) is int and model.in_channels == 2
    # the smallest input it takes: total stride 16 plus one
    assert model.min_input_size == 17
    with torch.no_grad():
        tap, = model(torch.randn(1, 2, 17, 17))
    assert tap.shape[-2:] == (2, 2)
    with pytest.raises(ValueError, match='smallest it takes, 17 x 17'):
        model(torch.randn(1, 2, 17, 16))
