"""What each layer is charged, decided by what it receives, against an
independent count (PyTorch's FLOP counter and the inputs' values), for
every family of model: base (with and without layer scales), large,
Meta-SpikeFormer (LIF), the detection heads, the segmentation head and an
event model on 5-D clips."""
import os.path as osp

import pytest
import torch
from independent_count import IndependentCount, assert_summary_matches
from mmengine.config import Config
from mmengine.registry import DefaultScope
from spiking_models import (LARGE, firing_backbone, firing_meta_backbone,
                            randomise_norms)

from sdt3_mm.analysis import SpikeCounter, fold_bn
from sdt3_mm.models.neurons.spiking_neuron import spiking_neurons

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _demo_config(name):
    return Config.fromfile(osp.join(ROOT, 'configs', 'demo', name))


def _build(scope, model_cfg):
    with DefaultScope.overwrite_default_scope(scope):
        from mmengine.registry import MODELS
        torch.manual_seed(0)
        return MODELS.build(model_cfg)


def count_both(model, forward, num_images, frames=1):
    """Run ``forward`` once under our SpikeCounter and the independent
    count; the counter's summary and the count."""
    norms = {neuron.norm for _, neuron in spiking_neurons(model)}
    count = IndependentCount(model, norms)
    try:
        with torch.no_grad(), SpikeCounter(model) as counter:
            forward()
            counter.add_images(num_images, frames=frames)
    finally:
        count.remove()
    return counter.summary(), count


def _not_ac(summary):
    return [row['layer'] for row in summary['layers'] if row['op'] != 'AC']


def _seg_demo_model():
    cfg = _demo_config('fpn_e-spikeformer-t_spike-fpn_shapes-seg.py')
    return randomise_norms(_build('mmseg', cfg.model)).eval()


def test_segmentation_demo_charges_every_spike_input_as_accumulates():
    """The decode head's convs after the nearest upsamplings and the
    classifier on the sum of the levels' spike maps read integer counts:
    accumulates, as counted from their inputs' values (within 1 %); only
    the stem, on normalised pixels, multiplies."""
    model = fold_bn(_seg_demo_model())
    x = torch.randn(2, 3, 64, 96)
    summary, count = count_both(model, lambda: model(x, mode='tensor'), 2)
    assert_summary_matches(summary, count, 2)
    rows = {row['layer']: row for row in summary['layers']}
    for name in ('scale_heads.2.2.conv', 'scale_heads.3.2.conv',
                 'scale_heads.3.4.conv', 'conv_seg'):
        assert rows[f'decode_head.{name}']['op'] == 'AC'
    assert _not_ac(summary) == ['backbone.downsample_layers.0.conv']
    # the classifier reads the sum of four levels' maps: counts up to 16
    # over D = 4, a mean count above one spike per element and step
    assert rows['decode_head.conv_seg']['firing_rate'] > 1
    assert 0 < summary['mean_firing_rate'] < 1


def test_segmentation_demo_unfolded_as_the_firing_rate_hook_counts_it():
    """FiringRateHook counts the model as trained (BN not folded): the same
    layers read spikes."""
    model = _seg_demo_model()
    x = torch.randn(1, 3, 64, 64)
    summary, count = count_both(model, lambda: model(x, mode='tensor'), 1)
    assert_summary_matches(summary, count, 1)
    assert _not_ac(summary) == ['backbone.downsample_layers.0.conv']


@pytest.mark.parametrize(
    'family', ['base', 'base-layer-scaled', 'large', 'meta'])
def test_backbone_families_against_the_independent_count(family):
    if family == 'meta':
        model, images = firing_meta_backbone(T=2), 3
    else:
        arch = LARGE if family == 'large' else 't'
        kwargs = dict(layer_scale_init_value=1e-6) if family.endswith(
            'scaled') else {}
        model, images = firing_backbone(arch, **kwargs), 2
    model = fold_bn(model)
    x = torch.randn(images, 3, 32, 48)
    summary, count = count_both(model, lambda: model(x), images)
    assert_summary_matches(summary, count, images)
    assert _not_ac(summary) == ['downsample_layers.0.conv'] + (
        # Meta-SpikeFormer's SepConvs have no neuron between their
        # depthwise and second pointwise conv
        [f'stages.{s}.sepconv.pwconv2.conv'
         for s in ('0.0', '1.0', '2.0', '2.1')] if family == 'meta' else [])


def test_detection_heads_against_the_independent_count():
    """The demo detector's spiking FPN, RPN head, shared-FC box head and
    FCN mask head (binary D = 1 neurons): every conv and FC reads spikes."""
    cfg = _demo_config('mask-rcnn_e-spikeformer-t_spike-fpn_shapes.py')
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = _build('mmdet', cfg.model)
    model = fold_bn(randomise_norms(model).eval())
    heads = torch.nn.ModuleDict(
        dict(
            neck=model.neck,
            rpn=model.rpn_head,
            bbox=model.roi_head.bbox_head,
            mask=model.roi_head.mask_head))
    feats = [
        torch.rand(2, c, s, s) * 3
        for c, s in ((24, 32), (48, 16), (96, 8), (128, 8))
    ]
    rois = torch.rand(5, 64, 7, 7) * 3
    mask_rois = torch.rand(5, 64, 14, 14) * 3

    def forward():
        heads.rpn(heads.neck(feats))
        heads.bbox(rois)
        heads.mask(mask_rois)

    summary, count = count_both(heads, forward, 2)
    assert_summary_matches(summary, count, 2)
    # The neck's laterals read the backbone's membrane potentials through
    # their neurons; nothing multiplies.
    assert _not_ac(summary) == []
    assert any(r['layer'].startswith('mask.') for r in summary['layers'])


def test_event_model_on_5d_clips_against_the_independent_count():
    """The event demo's model on B x T x 2 x H x W clips of event counts:
    the stem reads integer counts of events (spikes, not pixels), so it
    accumulates too; the summary's T counts the frames."""
    cfg = _demo_config('e-spikeformer-t_shapes-events.py')
    model = randomise_norms(_build('mmpretrain', cfg.model)).eval()
    model = fold_bn(model)
    generator = torch.Generator().manual_seed(0)
    clips = torch.poisson(
        torch.full((2, 4, 2, 32, 32), 0.3), generator=generator)
    summary, count = count_both(
        model, lambda: model(clips, mode='tensor'), 2, frames=4)
    assert_summary_matches(summary, count, 2)
    assert _not_ac(summary) == []
    assert summary['T'] == [4]
    # on normalised frames the stem multiplies
    summary, count = count_both(
        model, lambda: model(clips - 0.25, mode='tensor'), 2, frames=4)
    assert_summary_matches(summary, count, 2)
    assert _not_ac(summary) == ['backbone.downsample_layers.0.conv']


def test_integer_input_is_counts_over_norm_1_in_every_forward():
    """A stem on integer input (event counts) in a model whose neurons all
    have norm 4 reads them as counts over 1 in each forward, not as four
    times as many quarter spikes after a neuron of norm 4 fired in the
    forward before."""
    model = fold_bn(firing_backbone('t'))
    generator = torch.Generator().manual_seed(0)
    x = torch.poisson(torch.full((1, 3, 32, 32), 0.5), generator=generator)
    with torch.no_grad(), SpikeCounter(model) as counter:
        model(x)
        model(x)
        counter.add_images(2)
    stem = counter.summary()['layers'][0]
    assert stem['layer'] == 'downsample_layers.0.conv'
    assert stem['op'] == 'AC'
    assert stem['sops'] == pytest.approx(stem['flops'] / x.numel() *
                                         x.sum().item())


def test_ade20k_l_backbone_reports_and_folds_its_24_layer_scales():
    """The ADE20K Semantic-FPN L config's backbone (layer scales 1e-6 on
    every transformer block): the spike-driven report names its 24 layer
    scales among the multiplications; after fold_bn they are gone from the
    model and the report, and the outputs are equal (float64)."""
    from sdt3_mm.analysis import SpikeDriven
    from spiking_models import randomise_layer_scales
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/sem_fpn/'
                 'fpn_e-spikeformer-l_spike-fpn_4xb4-160k_ade20k-512x512.py'))
    backbone_cfg = cfg.model.backbone.copy()
    backbone_cfg.pop('init_cfg', None)
    backbone = _build('mmseg', backbone_cfg)
    backbone = randomise_layer_scales(randomise_norms(backbone)).eval()
    backbone = backbone.double()
    x = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    scales = sorted(n for n, _ in backbone.named_parameters()
                    if 'layer_scale' in n)
    assert len(scales) == 24
    with torch.no_grad(), SpikeDriven(backbone) as report:
        before = backbone(x)
    assert sorted(n for n in report.non_additions
                  if 'layer_scale' in n) == scales
    folded = fold_bn(backbone)
    assert not [n for n, _ in folded.named_parameters() if 'layer_scale' in n]
    with torch.no_grad(), SpikeDriven(folded) as report:
        after = folded(x)
    assert not [n for n in report.non_additions if 'layer_scale' in n]
    for a, b in zip(before, after):
        assert (a - b).abs().max().item() <= 1e-9


def test_sums_of_maps_of_a_norm_that_is_no_power_of_two():
    """D = 3: ``k / 3`` is not exact in float32, nor are sums of such maps;
    they still read as counts (within a few units in the last place), and
    a real-valued tensor beside them does not."""
    from torch import nn

    from sdt3_mm.models import SFANeuron

    class ThreeLevels(nn.Module):

        def __init__(self):
            super().__init__()
            self.neuron = SFANeuron(D=3)
            self.on_sum = nn.Conv2d(4, 2, 1)
            self.on_real = nn.Conv2d(4, 2, 1)

        def forward(self, x):
            spikes = self.neuron(x)
            maps = spikes + spikes.flip(-1) + spikes.flip(-2)
            return self.on_sum(maps), self.on_real(maps * 1.1)

    model = ThreeLevels().eval()
    x = torch.rand(2, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    x = x * 4 - 0.5
    counts = torch.round(x.clamp(0, 3))
    total = (counts + counts.flip(-1) + counts.flip(-2)).sum().item()
    with torch.no_grad(), SpikeCounter(model) as counter:
        model(x)
        counter.add_images(2)
    rows = {row['layer']: row for row in counter.summary()['layers']}
    assert rows['on_sum']['op'] == 'AC'
    # 1 x 1 conv, 2 outputs: each unit of count reaches two output taps
    assert rows['on_sum']['sops'] == pytest.approx(2 * total / 2)
    assert rows['on_real']['op'] == 'MAC'


def test_analysis_dispatches_on_contracts_not_model_classes():
    """sdt3_mm/analysis imports from the models only the contracts (the
    neuron's and the blocks') and the shared conv-norm pair BN folding
    walks: no backbone,
    neck or head class, so a block added later cannot be missed by a list
    of classes."""
    import ast
    import glob
    allowed = {
        'sdt3_mm.models.layers.spike_contract',
        'sdt3_mm.models.neurons.spiking_neuron',
        'sdt3_mm.models.layers.blocks',  # SpikeConvBN only, below
    }
    seen = set()
    for path in glob.glob(osp.join(ROOT, 'sdt3_mm', 'analysis', '*.py')):
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.startswith('sdt3_mm.models'):
                assert node.module in allowed, (path, node.module)
                names = {alias.name for alias in node.names}
                if node.module == 'sdt3_mm.models.layers.blocks':
                    assert names == {'SpikeConvBN'}, (path, names)
                seen.add(node.module)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith('sdt3_mm.models'), path
    assert 'sdt3_mm.models.layers.spike_contract' in seen


def test_segmentation_demo_runs_spike_driven_on_upsampled_and_summed_maps():
    """The decode head's convs after nearest upsampling and the classifier
    on the sum of the levels run on the binary maps of their counts, equal
    to the integer model in float64; only the stem reads real values."""
    from sdt3_mm.analysis import SpikeDriven
    model = fold_bn(_seg_demo_model()).double()
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        integer = model(x, mode='tensor')
        with SpikeDriven(model) as report:
            spikes = model(x, mode='tensor')
    assert (integer - spikes).abs().max().item() <= 1e-9
    for name in ('scale_heads.2.2.conv', 'scale_heads.3.2.conv',
                 'scale_heads.3.4.conv', 'conv_seg'):
        assert f'decode_head.{name}' in report.expanded
    assert [n for n, r in report.non_additions.items()
            if 'MAC' in r] == ['backbone.downsample_layers.0.conv']
