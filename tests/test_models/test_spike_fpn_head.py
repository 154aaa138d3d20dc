"""The spiking Semantic-FPN head: every conv reads spike counts."""
import pytest
import torch
from mmengine.registry import DefaultScope


def _head(**kwargs):
    from mmseg.registry import MODELS
    cfg = dict(
        type='sdt3_mm.SpikeFPNHead',
        in_channels=[8, 8, 8, 8],
        in_index=[0, 1, 2, 3],
        feature_strides=[2, 4, 8, 16],
        channels=8,
        num_classes=5,
        dropout_ratio=0.0)
    cfg.update(kwargs)
    with DefaultScope.overwrite_default_scope('mmseg'):
        head = MODELS.build(cfg)
    head.init_weights()
    return head


@pytest.mark.parametrize('size', [(32, 32), (33, 27)])
def test_every_conv_reads_spike_counts(size):
    # Training mode: the norms use batch statistics, so that every layer
    # of a freshly built head fires.
    head = _head()
    seen = {}

    def record(name):

        def hook(_, args):
            seen[name] = args[0].detach()

        return hook

    for name, layer in head.named_modules():
        if isinstance(layer, torch.nn.Conv2d):
            layer.register_forward_pre_hook(record(name))
    h, w = size
    levels = [
        torch.randn(2, 8, -(-h // s), -(-w // s)) * 2 for s in (1, 2, 4, 8)
    ]
    logits = head(levels)
    assert logits.shape == (2, 5, h, w)
    # 1 + 1 + 2 + 3 scale-head convs and the classifier.
    assert len(seen) == 8
    for name, x in seen.items():
        counts = x * 4  # D = 4: spikes are multiples of 1/4
        assert torch.equal(counts, counts.round()), name
        assert x.min() >= 0 and x.any(), name
        if name != 'conv_seg':
            assert x.max() <= 1, name
    # The classifier reads the sum of the four levels' spikes.
    assert seen['conv_seg'].max() <= 4


def test_gradient_reaches_every_level():
    head = _head()
    levels = [
        torch.randn(1, 8, 16 // s, 16 // s, requires_grad=True)
        for s in (1, 2, 4, 8)
    ]
    head(levels).sum().backward()
    assert all(level.grad.abs().sum() > 0 for level in levels)


def test_neurons_are_built_as_the_conv_modules_activations():
    """MMSegmentation builds each scale-head conv's activation from the
    head's act_cfg, which names our neuron; upsampling is nearest."""
    from mmcv.cnn import ConvModule

    from sdt3_mm.models.neurons.spiking_neuron import SpikingNeuron
    head = _head(neuron_cfg=dict(type='SFANeuron', D=2))
    assert head.act_cfg == dict(type='sdt3_mm.SFANeuron', D=2)
    convs = [
        m for m in head.scale_heads.modules() if isinstance(m, ConvModule)
    ]
    assert len(convs) == 1 + 1 + 2 + 3
    for conv in convs:
        assert conv.act_cfg['type'] == 'sdt3_mm.SFANeuron'
        assert isinstance(conv.activate, SpikingNeuron)
        assert conv.activate.D == 2
    # Between the convs of a scale head: its upsamplings.
    upsamplings = [
        m for scale_head in head.scale_heads for m in scale_head
        if not isinstance(m, ConvModule)
    ]
    assert len(upsamplings) == 1 + 2 + 3
    for m in upsamplings:
        assert isinstance(m, torch.nn.Upsample) and m.mode == 'nearest'


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match='act_cfg is not supported'):
        _head(act_cfg=dict(type='ReLU'))
    with pytest.raises(ValueError, match='one stride per level'):
        _head(feature_strides=[2, 4, 8])
    with pytest.raises(ValueError, match='start with the finest'):
        _head(feature_strides=[4, 2, 8, 16])
