"""Spike counts, FLOPs and energy against hand-computed numbers."""
import pytest
import torch
from torch import nn

from sdt3_mm.analysis import ENERGY_PRESETS, SpikeCounter
from sdt3_mm.models.utils.spike_layers import SpikeConvBN, base_attention


def _tiny_network():
    """Stem conv 3x3, 1 -> 2, weights 0 and biases 1.2 and 3.0, then a
    D = 4 neuron (integers 1 and 3 everywhere) and a 1x1 conv 2 -> 3."""
    stem = nn.Conv2d(1, 2, 3, padding=1)
    nn.init.zeros_(stem.weight)
    with torch.no_grad():
        stem.bias.copy_(torch.tensor([1.2, 3.0]))
    return nn.Sequential(
        SpikeConvBN(stem),
        SpikeConvBN(nn.Conv2d(2, 3, 1), neuron_cfg=dict(type='SFANeuron')))


def test_energy_of_a_hand_computed_network():
    model = _tiny_network()
    with torch.no_grad(), SpikeCounter(model) as counter:
        model(torch.randn(2, 1, 4, 4))
        counter.add_images(2)
    summary = counter.summary()
    stem, conv = summary['layers']
    # Stem: 2 x 4 x 4 outputs, 1 x 3 x 3 MACs each, on real pixels.
    assert stem['layer'] == '0.conv' and stem['op'] == 'MAC'
    assert stem['flops'] == 288 and stem['energy_pj'] == pytest.approx(
        4.6 * 288)
    # 1x1 conv: 3 x 4 x 4 outputs x 2 inputs = 96 FLOPs; its input has mean
    # integer (1 + 3) / 2 = 2, rate 2 / 4 = 0.5; SOPs = 96 x 0.5 x 1 x 4.
    assert conv['layer'] == '1.conv' and conv['op'] == 'AC'
    assert conv['flops'] == 96 and conv['D'] == 4
    assert conv['firing_rate'] == pytest.approx(0.5)
    assert conv['sops'] == pytest.approx(192)
    assert conv['energy_pj'] == pytest.approx(0.9 * 192)
    assert summary['energy_mj'] == pytest.approx(
        (4.6 * 288 + 0.9 * 192) * 1e-9)
    assert summary['mean_firing_rate'] == pytest.approx(0.5)
    assert summary['neurons'] == [
        dict(neuron='1.neuron', D=4, mean_integer=2.0, firing_rate=0.5)
    ]
    int8 = counter.summary(**ENERGY_PRESETS['int8'])
    assert int8['energy_mj'] == pytest.approx((0.23 * 288 + 0.03 * 192) * 1e-9)


def test_attention_products_count_k_and_q_spikes():
    torch.manual_seed(0)
    attention = base_attention(16, 2, dict(type='SFANeuron')).eval()
    spikes = {}
    for name in ('k_neuron', 'q_neuron'):
        getattr(attention, name).register_forward_hook(
            lambda m, i, o, name=name: spikes.__setitem__(name, o * 4))
    with torch.no_grad(), SpikeCounter(attention) as counter:
        attention(torch.rand(1, 16, 4, 4) * 3)
        counter.add_images(1)
    rows = {r['layer']: r for r in counter.summary()['layers']}
    # B x N x C x C_v / heads = 1 x 16 x 16 x 64 / 2
    for product, neuron in (('kv', 'k_neuron'), ('q', 'q_neuron')):
        row = rows[product]
        assert row['flops'] == 8192
        mean = spikes[neuron].mean().item()
        assert mean > 0
        assert row['sops'] == pytest.approx(8192 * mean)
        assert row['firing_rate'] == pytest.approx(mean / 4)


def test_summary_needs_images():
    with SpikeCounter(_tiny_network()) as counter:
        pass
    with pytest.raises(RuntimeError, match='no images were counted'):
        counter.summary()


def test_analysis_model_takes_the_configs_data_preprocessor():
    import os.path as osp

    from sdt3_mm.analysis.model_inputs import build_analysis_model
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    model, _ = build_analysis_model(
        osp.join(root, 'configs/demo/e-spikeformer-t_shapes-cls.py'))
    # the demo normalises with mean 127.5 and std 64, as its Runner does
    assert model.data_preprocessor.mean.flatten().tolist() == [127.5] * 3
    assert model.data_preprocessor.std.flatten().tolist() == [64.] * 3
