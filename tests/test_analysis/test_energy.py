"""Spike counts, FLOPs and energy against hand-computed numbers."""
import pytest
import torch
from spiking_models import firing_meta_backbone, spike_means
from torch import nn

from sdt3_mm.analysis import ENERGY_PRESETS, SpikeCounter, fold_bn
from sdt3_mm.models import MultiStepLIFNeuron, SFANeuron
from sdt3_mm.models.backbones.e_spikeformer import base_attention
from sdt3_mm.models.layers.spike_code_ops import LinearAttentionProduct
from sdt3_mm.models.layers.blocks import SpikeConvBN


def _tiny_network(neuron_cfg=dict(type='SFANeuron')):
    """Stem conv 3x3, 1 -> 2, weights 0 and biases 1.2 and 3.0, then a
    neuron (a D = 4 SFA neuron: integers 1 and 3 everywhere) and a 1x1
    conv 2 -> 3."""
    stem = nn.Conv2d(1, 2, 3, padding=1)
    nn.init.zeros_(stem.weight)
    with torch.no_grad():
        stem.bias.copy_(torch.tensor([1.2, 3.0]))
    return nn.Sequential(
        SpikeConvBN(stem),
        SpikeConvBN(nn.Conv2d(2, 3, 1), neuron_cfg=neuron_cfg)).eval()


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
        dict(neuron='1.neuron', T=1, D=4, mean_integer=2.0, firing_rate=0.5)
    ]
    assert summary['T'] == [1] and summary['D'] == [4]
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
        row = rows[f'product.{product}']
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


def test_lif_network_over_time_steps():
    """The tiny network with a LIF neuron over T = 2 steps (time folded
    into the batch: 2 images are 4 samples). Membranes 1.2 and 3.0 with
    tau 2 and threshold 1: the first channel never fires (0.6, 0.9), the
    second fires at both steps (1.5, reset, 1.5): mean spike 0.5."""
    model = _tiny_network(dict(type='MultiStepLIFNeuron', T=2))
    with torch.no_grad(), SpikeCounter(model) as counter:
        model(torch.randn(4, 1, 4, 4))
        counter.add_images(2)
    summary = counter.summary()
    stem, conv = summary['layers']
    # the stem runs on both steps: 2 x 288 MACs per image
    assert stem['op'] == 'MAC' and stem['flops'] == 576
    # 96 FLOPs per step and image, rate 0.5, T 2, D 1: 96 synaptic ops
    assert conv['op'] == 'AC' and conv['flops'] == 192
    assert (conv['T'], conv['D']) == (2, 1)
    assert conv['firing_rate'] == pytest.approx(0.5)
    assert conv['sops'] == pytest.approx(96 * 0.5 * 2 * 1)
    assert summary['T'] == [2] and summary['D'] == [1]
    assert summary['neurons'] == [
        dict(neuron='1.neuron', T=2, D=1, mean_integer=0.5, firing_rate=0.5)
    ]
    assert summary['energy_mj'] == pytest.approx((4.6 * 576 + 0.9 * 96) * 1e-9)


def test_meta_spikeformer_rates_and_attention_products():
    """Every LIF neuron's rate and every product's input rate, against
    rates taken here from the outputs."""
    model = fold_bn(firing_meta_backbone(T=2))
    records, _ = spike_means(model, MultiStepLIFNeuron)
    operands = []
    for name, module in model.named_modules():
        if isinstance(module, LinearAttentionProduct):
            module.register_forward_hook(
                lambda m, i, o, name=name: operands.append((name, i)))
    with torch.no_grad(), SpikeCounter(model) as counter:
        model(torch.randn(3, 3, 32, 32))
        counter.add_images(3)
    summary = counter.summary()
    assert summary['T'] == [2] and summary['D'] == [1]
    rates = {row['neuron']: row['firing_rate'] for row in summary['neurons']}
    assert len(rates) == len(records) == sum(
        isinstance(m, MultiStepLIFNeuron) for m in model.modules())
    for name, mean, _ in records:
        assert rates[name] == pytest.approx(mean, abs=1e-12)
    sent = sum(mean * size for _, mean, size in records)
    possible = sum(size for _, _, size in records)
    assert summary['mean_firing_rate'] == pytest.approx(sent / possible)
    assert 0 < summary['mean_firing_rate'] < 1
    rows = {row['layer']: row for row in summary['layers']}
    assert operands
    for name, (q, k, v, *_) in operands:
        flops = LinearAttentionProduct.flops(q, k, v)
        for key, operand in (('kv', k), ('q', q)):
            row = rows[f'{name}.{key}']
            assert row['op'] == 'AC' and row['D'] == 1 and row['T'] == 2
            assert row['flops'] == flops[key] / 3
            assert row['firing_rate'] == pytest.approx(
                operand.double().mean().item(), abs=1e-12)
    # the stem reads pixels, once per time step
    assert summary['layers'][0] == dict(
        summary['layers'][0],
        layer='downsample_layers.0.conv',
        op='MAC',
        flops=2 * 8 * 16 * 16 * 3 * 7 * 7)


def test_counting_does_not_synchronise_per_call(monkeypatch):
    model = firing_meta_backbone(T=2)
    counter = SpikeCounter(model)

    def refuse(self):
        raise AssertionError('Tensor.item() called while counting')

    with torch.no_grad(), counter:
        monkeypatch.setattr(torch.Tensor, 'item', refuse)
        model(torch.randn(1, 3, 32, 32))
        monkeypatch.undo()
        counter.add_images(1)
    assert counter.summary()['mean_firing_rate'] > 0


def test_model_without_spiking_neurons_is_refused():
    with pytest.raises(ValueError, match='Sequential has no spiking neuron'):
        SpikeCounter(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()))


def test_neurons_called_other_than_as_modules_are_named():
    """A layer that calls its neuron's methods directly hides its spikes
    from the hooks: the summary says so instead of reporting zeros."""

    class Hidden(nn.Module):

        def __init__(self):
            super().__init__()
            self.net = _tiny_network()

        def forward(self, x):
            stem, second = self.net
            return second.conv(second.neuron.fire_plain(stem(x)))

    model = Hidden().eval()
    with torch.no_grad(), SpikeCounter(model) as counter:
        model(torch.randn(1, 1, 4, 4))
        counter.add_images(1)
    with pytest.raises(
            RuntimeError,
            match='none of the 1 spiking neurons '
            'was called as a module'):
        counter.summary()


def test_all_reduce_sums_every_count(monkeypatch):
    """Two processes that counted the same: per-image figures unchanged,
    totals doubled (all_reduce simulated by doubling the packed counts)."""
    from sdt3_mm.analysis import energy
    model = _tiny_network()
    with torch.no_grad(), SpikeCounter(model) as counter:
        model(torch.randn(2, 1, 4, 4))
        counter.add_images(2)
    alone = counter.summary()
    reduced = []

    def double(packed):
        reduced.append(packed.clone())
        packed.mul_(2)

    monkeypatch.setattr(energy, 'get_world_size', lambda: 2)
    monkeypatch.setattr(energy, 'all_reduce', double)
    counter.all_reduce()
    together = counter.summary()
    assert reduced[0].dtype == torch.float64
    assert together['num_images'] == 4
    assert together['layers'] == alone['layers']
    assert together['neurons'] == alone['neurons']
    assert together['energy_mj'] == pytest.approx(alone['energy_mj'])


def test_the_documented_worked_example():
    """The worked example of docs/en/user_guides/spike_driven_and_energy.md:
    a stem, a D = 4 neuron, the sum of its map and the map mirrored, a 2x
    nearest upsampling and a 1 x 1 conv; the numbers the page derives by
    hand."""
    import torch.nn.functional as F

    class Example(nn.Module):

        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(1, 2, 3, padding=1)
            nn.init.zeros_(self.stem.weight)
            with torch.no_grad():
                self.stem.bias.copy_(torch.tensor([1.2, 3.0]))
            self.neuron = SFANeuron(D=4)
            self.cls = nn.Conv2d(2, 3, 1)

        def forward(self, x):
            spikes = self.neuron(self.stem(x))
            maps = spikes + spikes.flip(-1)
            return self.cls(
                F.interpolate(maps, scale_factor=2, mode='nearest'))

    model = Example().eval()
    with torch.no_grad(), SpikeCounter(model) as counter:
        model(torch.randn(1, 1, 4, 4))
        counter.add_images(1)
    summary = counter.summary()
    stem, cls = summary['layers']
    assert (stem['layer'], stem['op'], stem['flops']) == ('stem', 'MAC', 288)
    assert summary['neurons'][0]['firing_rate'] == 0.5
    assert (cls['layer'], cls['op'], cls['flops']) == ('cls', 'AC', 384)
    assert cls['sops'] == 1536 and cls['firing_rate'] == 1.0
    assert summary['energy_mj'] * 1e9 == pytest.approx(2707.2)


def test_shared_layer_pays_each_calls_way():
    """A layer called on spikes and then on real values (a shared head
    conv, say) charges the first call accumulates and the second MACs."""

    class Shared(nn.Module):

        def __init__(self):
            super().__init__()
            self.neuron = SFANeuron(D=4)
            self.conv = nn.Conv2d(2, 3, 1)

        def forward(self, x):
            return self.conv(self.neuron(x)), self.conv(x)

    model = Shared().eval()
    x = torch.full((1, 2, 4, 4), 1.2)  # counts 1 everywhere
    with torch.no_grad(), SpikeCounter(model) as counter:
        model(x)
        counter.add_images(1)
    row, = counter.summary()['layers']
    # each call: 3 x 4 x 4 outputs x 2 inputs = 96 FLOPs
    assert (row['op'], row['flops'], row['mac_flops']) == ('AC+MAC', 192, 96)
    assert row['sops'] == 96 and row['firing_rate'] == 0.25
    assert row['energy_pj'] == pytest.approx(0.9 * 96 + 4.6 * 96)
