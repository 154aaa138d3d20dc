"""Our synaptic-operation (AC) and MAC counts against an independent
counter: SpikingJelly 2.0's ``SynOpCounter`` and ``MACCounter``, which count
at the ATen level (every convolution and matrix product as dispatched) and
know binary spikes only.

Where the conventions agree the counts are equal: MACs of a layer on real
values; accumulates of a layer whose every input element reaches all of its
outputs' taps (1 x 1 convs, conv1d, linear layers, a transposed conv with
stride equal to its kernel, a padded conv whose input's border is silent),
on binary spikes (D = 1 SFA neurons). Where they differ,
docs/en/user_guides/spike_driven_and_energy.md says why (tested here as
bounds):

* a padded conv: SpikingJelly counts each spike's own fan-out (a spike at
  the border reaches fewer outputs); we charge ``FLOPs / numel`` per spike,
  FLOPs including the taps over the zero padding, the papers' ``FLOPs x
  rate`` (ours is the larger, by the border's share);
* ``v @ k^T`` with both operands binary: SpikingJelly counts coincidences
  (a k spike meeting a v spike); we charge each k spike a row of v;
* integer counts above 1 (D > 1, sums of maps): SpikingJelly sees no spikes
  and counts MACs; we count accumulates, one per unit of count.
"""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from spiking_models import randomise_norms
from spikingjelly.activation_based.op_counter import (DispatchCounterMode,
                                                      MACCounter, SynOpCounter)
from torch import nn

from sdt3_mm.analysis import SpikeCounter, fold_bn
from sdt3_mm.models import ESpikeFormer, SFANeuron
from sdt3_mm.models.layers.spike_code_ops import LinearAttentionProduct

BINARY = dict(type='SFANeuron', D=1)


def spikingjelly_counts(model, forward):
    """Per module path: (synaptic ops, MACs) by SpikingJelly."""
    synops, macs = SynOpCounter(), MACCounter()
    with torch.no_grad(), DispatchCounterMode([synops, macs]):
        forward()
    root = type(model).__name__ + '.'

    def per_module(counter):
        return {
            name[len(root):]: sum(ops.values())
            for name, ops in counter.get_counts().items()
            if name.startswith(root)
        }

    return per_module(synops), per_module(macs)


def our_counts(model, forward, images):
    """Per row: (synaptic ops, MAC FLOPs, op), totals over the images."""
    with torch.no_grad(), SpikeCounter(model) as counter:
        forward()
        counter.add_images(images)
    return {
        row['layer']: (row['sops'] * images, row['mac_flops'] * images,
                       row['op'])
        for row in counter.summary()['layers']
    }


def _uniform_fan_out(layer):
    """Every input element reaches the same number of output taps."""
    if isinstance(layer, nn.Linear):
        return True
    if isinstance(layer, nn.ConvTranspose2d):
        return layer.stride == layer.kernel_size and layer.padding == (0, 0)
    return all(k == 1 for k in layer.kernel_size) and all(
        s == 1 for s in layer.stride) and all(p == 0 for p in layer.padding)


class SmallSNN(nn.Module):
    """Stem on pixels, binary neurons, a 1 x 1 conv, spikes max-pooled,
    upsampled nearest, concatenated and zero-padded into a 3 x 3 conv,
    and a linear classifier on the last spikes."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.neuron1 = SFANeuron(D=1)
        self.pointwise = nn.Conv2d(8, 16, 1)
        self.neuron2 = SFANeuron(D=1)
        self.pool = nn.MaxPool2d(2)
        self.up = nn.Upsample(scale_factor=2, mode='nearest')
        self.pad = nn.ZeroPad2d(1)
        self.conv = nn.Conv2d(32, 8, 3, padding=1)
        self.neuron3 = SFANeuron(D=1)
        self.fc = nn.Linear(8 * 10 * 10, 5)

    def forward(self, x):
        spikes = self.neuron2(self.pointwise(self.neuron1(self.stem(x))))
        maps = torch.cat([spikes, self.up(self.pool(spikes))], dim=1)
        out = self.neuron3(self.conv(self.pad(maps)))
        return self.fc(out.flatten(1))


def test_small_snn_equals_spikingjelly_layer_by_layer():
    torch.manual_seed(0)
    model = SmallSNN().eval()
    x = torch.randn(3, 3, 8, 8)
    sj_synops, sj_macs = spikingjelly_counts(model, lambda: model(x))
    ours = our_counts(model, lambda: model(x), 3)
    assert set(ours) == {'stem', 'pointwise', 'conv', 'fc'}
    assert ours['stem'][2] == 'MAC' and ours['stem'][1] == sj_macs['stem']
    assert sj_synops['stem'] == 0
    for name in ('pointwise', 'conv', 'fc'):
        sops, mac_flops, op = ours[name]
        assert op == 'AC' and mac_flops == 0 == sj_macs[name]
        assert sj_synops[name] > 0
        # the conv reads pooled, upsampled, concatenated and padded spikes
        assert sops == pytest.approx(sj_synops[name], rel=1e-9), name


def _binary_backbone():
    torch.manual_seed(0)
    model = ESpikeFormer('t', neuron_cfg=BINARY)
    model.out_indices = (4, )
    return fold_bn(randomise_norms(model).eval())


def test_t_backbone_against_spikingjelly():
    """E-SpikeFormer T with binary neurons: equal on every layer of uniform
    fan-out and on the stem's MACs; on padded convs SpikingJelly's exact
    fan-out is at most ours; the attention's product with q equal, its
    v @ k^T at most ours."""
    model = _binary_backbone()
    x = torch.randn(2, 3, 32, 32)
    sj_synops, sj_macs = spikingjelly_counts(model, lambda: model(x))
    ours = our_counts(model, lambda: model(x), 2)
    layers = dict(model.named_modules())
    uniform = padded = 0
    padded_ours = padded_sj = 0.
    for name, (sops, mac_flops, op) in ours.items():
        if name == 'downsample_layers.0.conv':
            assert op == 'MAC' and mac_flops == sj_macs[name]
            continue
        assert op == 'AC' and sj_macs.get(name, 0) == 0, name
        if name.endswith('.product.kv') or name.endswith('.product.q'):
            continue
        if _uniform_fan_out(layers[name]):
            assert sops == pytest.approx(sj_synops[name], rel=1e-9), name
            uniform += 1
        else:
            assert sj_synops[name] <= sops * (1 + 1e-9), name
            padded_ours += sops
            padded_sj += sj_synops[name]
            padded += 1
    assert uniform >= 30 and padded >= 10
    # the border's share at 32 x 32 (maps down to 2 x 2 at stride 16)
    assert 0.6 < padded_sj / padded_ours < 1
    products = [
        n for n, m in layers.items() if isinstance(m, LinearAttentionProduct)
    ]
    assert products
    for name in products:
        q_sops, kv_sops = ours[f'{name}.q'][0], ours[f'{name}.kv'][0]
        coincidences = sj_synops[name] - q_sops
        assert 0 <= coincidences <= kv_sops


def test_detection_heads_against_spikingjelly():
    """The demo's shared-FC box head and FCN mask head (binary neurons):
    the FCs, the 2 x 2 stride-2 deconv and the 1 x 1 logits conv equal;
    the padded 3 x 3 convs at most ours."""
    cfg = Config.fromfile('configs/demo/'
                          'mask-rcnn_e-spikeformer-t_spike-fpn_shapes.py')
    with DefaultScope.overwrite_default_scope('mmdet'):
        from mmengine.registry import MODELS
        torch.manual_seed(0)
        detector = MODELS.build(cfg.model)
    detector = fold_bn(randomise_norms(detector).eval())
    for head, size in ((detector.roi_head.bbox_head, 7),
                       (detector.roi_head.mask_head, 14)):
        rois = torch.rand(4, 64, size, size) * 3
        sj_synops, sj_macs = spikingjelly_counts(head, lambda: head(rois))
        ours = our_counts(head, lambda: head(rois), 4)
        layers = dict(head.named_modules())
        assert ours
        for name, (sops, mac_flops, op) in ours.items():
            assert op == 'AC' and mac_flops == 0, name
            if _uniform_fan_out(layers[name]):
                assert sops == pytest.approx(sj_synops[name], rel=1e-9), name
            else:
                assert 0 < sj_synops[name] <= sops * (1 + 1e-9), name
