"""A neuron as the activation of mmcv's ConvModule, from any scope."""
import pytest
import torch
from mmcv.cnn import ConvModule
from mmengine.registry import DefaultScope

from sdt3_mm.models.neurons import neuron_act_cfg
from sdt3_mm.models.neurons.spiking_neuron import SpikingNeuron


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
@pytest.mark.parametrize(
    'neuron_type', ['SFANeuron', 'sdt3_mm.SFANeuron', 'MultiStepLIFNeuron'])
def test_conv_module_builds_the_neuron_from_act_cfg(scope, neuron_type):
    # ConvModule passes inplace=True (its default) to the activation it
    # builds; the neuron takes it and still leaves its input intact.
    with DefaultScope.overwrite_default_scope(scope):
        conv = ConvModule(
            3,
            4,
            1,
            norm_cfg=dict(type='BN'),
            act_cfg=neuron_act_cfg(
                dict(type=neuron_type, T=2) if 'LIF' in
                neuron_type else dict(type=neuron_type, D=2))).eval()
    assert isinstance(conv.activate, SpikingNeuron)
    x = torch.randn(4, 3, 5, 5) * 3
    with torch.no_grad():
        membrane = conv.bn(conv.conv(x))
        kept = membrane.clone()
        assert torch.equal(conv(x), conv.activate(membrane))
    assert torch.equal(membrane, kept)


def test_no_neuron_is_no_activation():
    assert neuron_act_cfg(None) is None
    assert not ConvModule(
        2, 2, 1, act_cfg=neuron_act_cfg(None)).with_activation
