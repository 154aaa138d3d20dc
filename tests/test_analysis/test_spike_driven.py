"""Spike-driven execution: binary maps per neuron, accumulated."""
from collections import Counter

import pytest
import torch
from spiking_models import LARGE, firing_backbone, firing_meta_backbone

from sdt3_mm.analysis import SpikeDriven, fold_bn, spike_driven
from sdt3_mm.models import MultiStepLIFNeuron, SpikeFPN
from sdt3_mm.models.backbones.meta_spikeformer import RepConv
from sdt3_mm.models.layers.spike_code_ops import LinearAttentionProduct
from sdt3_mm.models.layers.blocks import SpikeLinearAttention
from sdt3_mm.models.neurons.spiking_neuron import SpikingNeuron


def _max_diff(a, b):
    return max((x - y).abs().max().item() for x, y in zip(a, b))


@pytest.mark.parametrize('arch', ['t', LARGE])
def test_spike_driven_equals_integer_in_float64(arch):
    model = firing_backbone(arch).double()
    x = torch.randn(2, 3, 40, 56, dtype=torch.float64)
    with torch.no_grad():
        integer = model(x)
        with SpikeDriven(model) as report:
            spikes = model(x)
    assert _max_diff(integer, spikes) <= 1e-9
    attentions = [
        n for n, m in model.named_modules()
        if isinstance(m, SpikeLinearAttention)
    ]
    assert attentions
    for name in attentions:
        assert report.expanded[f'{name}.product.kv'] == 1
        assert report.expanded[f'{name}.product.q'] == 1
    num_neurons = sum(isinstance(m, SpikingNeuron) for m in model.modules())
    assert report.binary_maps == 4 * num_neurons


def test_every_consumed_map_is_binary_and_nonempty(monkeypatch):
    model = firing_backbone('t')
    consumed, weight_inputs = [], []
    maps_of = SpikeDriven._spike_maps
    apply_weights = spike_driven._apply_weights

    def spy_maps(self, x):
        found = maps_of(self, x)
        if found is not None:
            consumed.extend(found[0])
        return found

    def spy_weights(layer, x):
        weight_inputs.append(x)
        return apply_weights(layer, x)

    monkeypatch.setattr(SpikeDriven, '_spike_maps', spy_maps)
    monkeypatch.setattr(spike_driven, '_apply_weights', spy_weights)
    with torch.no_grad(), SpikeDriven(model) as report:
        model(torch.randn(1, 3, 32, 32))
    assert weight_inputs and len(consumed) >= len(weight_inputs)
    for maps in (consumed, weight_inputs):
        for spikes in maps:
            assert ((spikes == 0) | (spikes == 1)).all()
    assert sum(s.sum().item() for s in weight_inputs) > 0
    # Only the stem reads real values; the rest that multiplies is BN and
    # the attention scales.
    reasons = set(report.non_additions.values())
    macs = [n for n, r in report.non_additions.items() if 'MAC' in r]
    assert macs == ['downsample_layers.0.conv']
    assert all('MAC' in r or 'BatchNorm' in r or 'attention scale' in r
               for r in reasons)


def test_folded_model_multiplies_only_in_the_stem_and_attention_scale():
    """Layer scales fold with the norms; the attention scale stays."""
    model = firing_backbone(LARGE)
    with torch.no_grad(), SpikeDriven(model) as report:
        model(torch.randn(1, 3, 32, 32))
    kinds = {n.rsplit('.', 1)[-1] for n in report.non_additions}
    assert {'layer_scale1', 'layer_scale2', 'scale'} < kinds
    model = fold_bn(model)
    with torch.no_grad(), SpikeDriven(model) as report:
        model(torch.randn(1, 3, 32, 32))
    kinds = {n.rsplit('.', 1)[-1] for n in report.non_additions}
    assert kinds == {'conv', 'scale'}
    assert [n for n in report.non_additions
            if n.endswith('conv')] == ['downsample_layers.0.conv']


def test_float32_layers_agree_given_the_same_input():
    model = firing_backbone('t')
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad(), SpikeDriven(model, compare=True) as report:
        model(x)
    assert len(report.layer_errors) == len(report.expanded)
    assert report.max_layer_error() <= 1e-5


def test_context_restores_the_model():
    model = firing_backbone('t')
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
        with SpikeDriven(model):
            model(x)
        after = model(x)
    assert _max_diff(before, after) == 0
    assert not any('forward' in m.__dict__ for m in model.modules())
    assert not any(m._forward_hooks for m in model.modules())


def test_spiking_fpn_runs_spike_driven():
    torch.manual_seed(0)
    neck = SpikeFPN([48, 96, 128], 32, 4, in_strides=[4, 8, 16])
    neck.eval().double()
    feats = [
        torch.rand(1, c, s, s, dtype=torch.float64) * 3
        for c, s in ((48, 16), (96, 8), (128, 4))
    ]
    with torch.no_grad():
        integer = neck(feats)
        with SpikeDriven(neck) as report:
            spikes = neck(feats)
    assert _max_diff(integer, spikes) <= 1e-9
    convs = [
        n for n, m in neck.named_modules() if isinstance(m, torch.nn.Conv2d)
    ]
    assert sorted(report.expanded) == sorted(convs)


def test_product_output_is_replaced_by_its_spike_driven_products(monkeypatch):
    """The hook on the attention product returns what the product module's
    own ``spike_driven`` gives for the operands' maps."""
    model = firing_backbone('t').double()
    products = [
        m for m in model.modules() if isinstance(m, LinearAttentionProduct)
    ]
    seen = []

    def spy(product, inputs, output):
        seen.append(output)

    for product in products:
        product.register_forward_hook(spy)  # runs after SpikeDriven's
    calls = []
    original = LinearAttentionProduct.spike_driven

    def counting(maps, norms):
        calls.append((maps, norms))
        return original(maps, norms)

    monkeypatch.setattr(LinearAttentionProduct, 'spike_driven',
                        staticmethod(counting))
    with torch.no_grad(), SpikeDriven(model):
        model(torch.randn(1, 3, 32, 32, dtype=torch.float64))
    assert len(calls) == len(products) == len(seen)
    for (maps, norms), output in zip(calls, seen):
        assert [len(m) for m in maps] == [4, 4, 4]
        assert norms == [4., 4., 4.]
        assert torch.equal(original(maps, norms)['q'], output)


def test_meta_spikeformer_runs_spike_driven():
    """LIF neurons over T = 2 steps: one binary map per call (max_level 1);
    RepConv's convs after its first BN read real values until fold_bn
    merges it into one 3x3 conv on the spikes."""
    model = firing_meta_backbone(T=2).double()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    calls = []
    for module in model.modules():
        if isinstance(module, MultiStepLIFNeuron):
            module.register_forward_hook(lambda *args: calls.append(1))
    with torch.no_grad():
        integer = model(x)
        calls.clear()
        with SpikeDriven(model, compare=True) as report:
            spikes = model(x)
        num_calls = len(calls)
        folded = fold_bn(model)
        with SpikeDriven(folded) as folded_report:
            folded_spikes = folded(x)
    assert _max_diff(integer, spikes) <= 1e-9
    assert _max_diff(integer, folded_spikes) <= 1e-9
    assert report.binary_maps == num_calls > 0
    assert report.max_layer_error() <= 1e-12
    reps = [n for n, m in model.named_modules() if isinstance(m, RepConv)]
    assert reps
    macs = {n for n, r in report.non_additions.items() if 'MAC' in r}
    for name in reps:
        assert f'{name}.conv1' in report.expanded
        assert {f'{name}.dwconv', f'{name}.conv2'} <= macs
    attentions = [
        n for n, m in model.named_modules()
        if isinstance(m, SpikeLinearAttention)
    ]
    for name in attentions:
        for product in ('kv', 'q'):
            assert report.expanded[f'{name}.product.{product}'] == 1
            assert folded_report.expanded[f'{name}.product.{product}'] == 1
    # Folded, only the stem and the linear depthwise-pointwise pairs of the
    # SepConvs (no neuron between) read real values; no BN is left.
    reasons = Counter(folded_report.non_additions.values())
    assert set(reasons) == {
        'reads real values (MAC)', 'attention scale x0.125'
    }
    assert sorted(n for n, r in folded_report.non_additions.items()
                  if 'MAC' in r) == ['downsample_layers.0.conv'] + [
                      f'stages.{s}.sepconv.pwconv2.conv'
                      for s in ('0.0', '1.0', '2.0', '2.1')
                  ]
