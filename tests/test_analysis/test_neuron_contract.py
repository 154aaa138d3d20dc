"""A neuron type defined only here flows through spike-driven execution and
spike counting unchanged; neurons that break the contract are caught."""
import pytest
import torch
from spiking_models import randomise_norms
from torch import nn

from sdt3_mm.analysis import SpikeCounter, SpikeDriven, SpikeDrivenError
from sdt3_mm.models import ESpikeFormer
from sdt3_mm.models.layers.blocks import SpikeConvBN
from sdt3_mm.models.neurons.spiking_neuron import SpikingNeuron


class ThreeLevelNeuron(SpikingNeuron):
    """Counts 0..3 over norm 2 (the norm need not be the largest count),
    rounding half up, sent as three binary maps that fire late: step ``t``
    fires where ``k >= 3 - t`` (another valid decomposition than the
    default)."""

    max_level = 3
    norm = 2.

    def fire_plain(self, x):
        level = x.clamp(0, 3)
        return (level + (torch.floor(level + 0.5) - level).detach()) / 2

    def fire_with_code(self, x):
        spikes = self.fire_plain(x)
        return spikes, self.spike_counts(spikes.detach()).to(torch.uint8)

    def binary_maps(self, spikes):
        counts = self.spike_counts(spikes)
        return [(counts >= 3 - step).to(spikes.dtype) for step in range(3)]


class FractionalMapsNeuron(ThreeLevelNeuron):
    """Maps that add up to the output but are not binary."""

    def binary_maps(self, spikes):
        return [self.spike_counts(spikes) / 3] * 3  # sums to k


class DroppedStepNeuron(ThreeLevelNeuron):
    """Binary maps whose last step never fires: they miss k = 3."""

    def binary_maps(self, spikes):
        counts = self.spike_counts(spikes)
        return [(counts > step).to(spikes.dtype)
                for step in range(2)] + [torch.zeros_like(spikes)]


class OffGridNeuron(ThreeLevelNeuron):
    """An output that is not a count over norm."""

    def fire_plain(self, x):
        return torch.sigmoid(x)


def _backbone(neuron_type, dtype=torch.float32):
    torch.manual_seed(0)
    model = ESpikeFormer('t', neuron_cfg=dict(type=neuron_type))
    model.out_indices = tuple(range(model.num_taps))
    return randomise_norms(model).eval().to(dtype)


def _max_diff(a, b):
    return max((x - y).abs().max().item() for x, y in zip(a, b))


def test_test_defined_neuron_runs_spike_driven():
    model = _backbone(ThreeLevelNeuron, torch.float64)
    # neuron_cfg reached every neuron of the backbone: none kept the default
    neurons = [m for m in model.modules() if isinstance(m, SpikingNeuron)]
    assert neurons and all(type(m) is ThreeLevelNeuron for m in neurons)
    x = torch.randn(2, 3, 40, 56, dtype=torch.float64)
    with torch.no_grad():
        integer = model(x)
        with SpikeDriven(model, compare=True) as report:
            spikes = model(x)
    assert _max_diff(integer, spikes) == 0
    assert report.max_layer_error() == 0
    # three maps per neuron, every weight layer but the stem and every
    # attention product fed by them
    assert report.binary_maps == 3 * len(neurons)
    assert [n for n, r in report.non_additions.items()
            if 'MAC' in r] == ['downsample_layers.0.conv']
    products = [n for n, _ in model.named_modules() if n.endswith('product')]
    assert products and all(report.expanded[f'{n}.{product}'] == 1
                            for n in products for product in ('kv', 'q'))
    assert len(report.layer_errors) == len(report.expanded)


def test_test_defined_neuron_is_counted():
    """Stem conv 3x3, 1 -> 2, weights 0 and biases 1.2 and 3.0, then the
    test neuron (counts 1 and 3 everywhere) and a 1x1 conv 2 -> 3."""
    stem = nn.Conv2d(1, 2, 3, padding=1)
    nn.init.zeros_(stem.weight)
    with torch.no_grad():
        stem.bias.copy_(torch.tensor([1.2, 3.0]))
    model = nn.Sequential(
        SpikeConvBN(stem),
        SpikeConvBN(
            nn.Conv2d(2, 3, 1),
            neuron_cfg=dict(type=ThreeLevelNeuron))).eval()
    with torch.no_grad(), SpikeCounter(model) as counter:
        model(torch.randn(2, 1, 4, 4))
        counter.add_images(2)
    summary = counter.summary()
    stem_row, conv = summary['layers']
    assert stem_row['op'] == 'MAC' and stem_row['flops'] == 288
    # 96 FLOPs per image; mean count (1 + 3) / 2 = 2 of 3: rate 2 / 3,
    # synaptic ops 96 x 2 / 3 x T 1 x D 3 = 192
    assert conv['op'] == 'AC' and conv['D'] == 3 and conv['T'] == 1
    assert conv['firing_rate'] == pytest.approx(2 / 3)
    assert conv['sops'] == pytest.approx(192)
    assert summary['D'] == [3] and summary['T'] == [1]
    assert summary['neurons'] == [
        dict(
            neuron='1.neuron',
            T=1,
            D=3,
            mean_integer=2.0,
            firing_rate=pytest.approx(2 / 3))
    ]


@pytest.mark.parametrize('neuron_type, message', [
    (FractionalMapsNeuron, 'holds values other than 0 and 1'),
    (DroppedStepNeuron, 'binary maps summed over norm differ from its '
     'output'),
    (OffGridNeuron, 'binary maps summed over norm differ from its output'),
])
def test_neuron_breaking_the_contract_is_named(neuron_type, message):
    model = _backbone(neuron_type)
    with pytest.raises(
            SpikeDrivenError,
            match=rf'^stages\.0\.0\.sepconv\.pwconv1\.neuron '
            rf'\({neuron_type.__name__}, max_level 3, norm 2\): .*{message}'):
        with torch.no_grad(), SpikeDriven(model):
            model(torch.randn(1, 3, 32, 32))
    # and the hooks went with the error
    assert not any(m._forward_hooks for m in model.modules())
