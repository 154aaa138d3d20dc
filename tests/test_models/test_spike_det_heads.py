"""The spiking RPN, box and mask heads: every conv and FC reads spikes."""
import pytest
import torch
from mmengine.registry import DefaultScope

ANCHORS = dict(
    type='AnchorGenerator',
    scales=[8],
    ratios=[0.5, 1.0, 2.0],
    strides=[4, 8, 16, 32, 64])


def _build(cfg):
    from mmdet.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmdet'):
        head = MODELS.build(cfg)
    head.init_weights()
    return head


def _inputs_of_linear_layers(module, run):
    seen = {}

    def record(name):

        def hook(_, args):
            seen[name] = args[0].detach()

        return hook

    for name, layer in module.named_modules():
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.ConvTranspose2d,
                              torch.nn.Linear)):
            layer.register_forward_pre_hook(record(name))
    out = run()
    return seen, out


def _assert_spikes(seen, names):
    assert set(seen) == set(names)
    for name, x in seen.items():
        assert set(x.unique().tolist()) <= {0.0, 1.0}, name
        assert x.any(), f'{name} reads no spike at all'


def test_rpn_head_reads_spikes_and_its_shared_conv_fires_at_init():
    head = _build(
        dict(
            type='sdt3_mm.SpikeRPNHead',
            in_channels=16,
            feat_channels=16,
            anchor_generator=ANCHORS))
    x = torch.randn(2, 16, 12, 12)
    seen, (cls, reg) = _inputs_of_linear_layers(head,
                                                lambda: head.forward_single(x))
    _assert_spikes(seen, ['rpn_conv.0.conv', 'rpn_cls', 'rpn_reg'])
    assert cls.shape == (2, 3, 12, 12) and reg.shape == (2, 12, 12, 12)


def test_rpn_head_with_stacked_convs():
    head = _build(
        dict(
            type='sdt3_mm.SpikeRPNHead',
            in_channels=16,
            feat_channels=16,
            num_convs=2,
            anchor_generator=ANCHORS))
    seen, _ = _inputs_of_linear_layers(
        head, lambda: head.forward_single(torch.randn(1, 16, 8, 8)))
    _assert_spikes(
        seen, ['rpn_conv.0.conv', 'rpn_conv.1.conv', 'rpn_cls', 'rpn_reg'])


def test_box_head_reads_spikes():
    head = _build(
        dict(
            type='sdt3_mm.SpikeShared2FCBBoxHead',
            in_channels=16,
            fc_out_channels=32,
            roi_feat_size=7,
            num_classes=5))
    seen, (cls, reg) = _inputs_of_linear_layers(
        head, lambda: head(torch.randn(6, 16, 7, 7)))
    _assert_spikes(seen,
                   ['shared_fcs.0.0', 'shared_fcs.1.0', 'fc_cls', 'fc_reg'])
    assert cls.shape == (6, 6) and reg.shape == (6, 20)


def test_box_head_with_convs_and_branches():
    head = _build(
        dict(
            type='sdt3_mm.SpikeConvFCBBoxHead',
            num_shared_convs=1,
            num_cls_fcs=1,
            num_reg_convs=1,
            in_channels=16,
            conv_out_channels=16,
            fc_out_channels=32,
            roi_feat_size=7,
            num_classes=5))
    seen, _ = _inputs_of_linear_layers(head,
                                       lambda: head(torch.randn(4, 16, 7, 7)))
    _assert_spikes(seen, [
        'shared_convs.0.conv', 'cls_fcs.0.0', 'reg_convs.0.conv', 'fc_cls',
        'fc_reg'
    ])


def test_box_head_refuses_average_pooling_of_spikes():
    with pytest.raises(ValueError, match='averaged spikes'):
        _build(
            dict(
                type='sdt3_mm.SpikeConvFCBBoxHead',
                num_shared_fcs=1,
                with_avg_pool=True,
                in_channels=16,
                roi_feat_size=7,
                num_classes=5))


def test_mask_head_reads_spikes():
    head = _build(
        dict(
            type='sdt3_mm.SpikeFCNMaskHead',
            num_convs=2,
            in_channels=16,
            conv_out_channels=16,
            num_classes=5))
    seen, masks = _inputs_of_linear_layers(
        head, lambda: head(torch.randn(3, 16, 14, 14)))
    _assert_spikes(seen,
                   ['convs.0.conv', 'convs.1.conv', 'upsample', 'conv_logits'])
    assert masks.shape == (3, 5, 28, 28)


def test_mask_head_refuses_bilinear_upsampling_of_spikes():
    with pytest.raises(ValueError, match='interpolated spikes'):
        _build(
            dict(
                type='sdt3_mm.SpikeFCNMaskHead',
                in_channels=16,
                num_classes=5,
                upsample_cfg=dict(type='bilinear', scale_factor=2)))


@pytest.mark.parametrize('norm_cfg,saturates', [(dict(type='BN'), False),
                                                (None, True)])
def test_box_head_norms_keep_a_shifted_fc_from_saturating(norm_cfg, saturates):
    # A common shift of an FC's weights, as training with Adam produces,
    # moves all its outputs at once; the norm after it takes the shift
    # out, so its neurons still tell RoIs apart.
    head = _build(
        dict(
            type='sdt3_mm.SpikeShared2FCBBoxHead',
            in_channels=16,
            fc_out_channels=32,
            roi_feat_size=7,
            num_classes=5,
            norm_cfg=norm_cfg))
    fc = head.shared_fcs[0]
    fc = fc[0] if isinstance(fc, torch.nn.Sequential) else fc
    with torch.no_grad():
        fc.weight += 0.05
    seen, _ = _inputs_of_linear_layers(head,
                                       lambda: head(torch.randn(64, 16, 7, 7)))
    spikes = next(x for name, x in seen.items()
                  if name.startswith('shared_fcs.1'))
    varying = (spikes.std(0) > 0).float().mean().item()
    assert (varying < 0.05) == saturates, varying


def _calls_of(modules, run):
    """How often each of ``modules`` (name: module) ran during ``run``."""
    calls = dict.fromkeys(modules, 0)

    def count(name):

        def hook(*_):
            calls[name] += 1

        return hook

    for name, module in modules.items():
        module.register_forward_hook(count(name))
    run()
    return calls


def test_box_head_convs_fire_neurons_built_from_act_cfg():
    """The branch convs' activations are our neurons, built by mmcv from
    act_cfg; the ReLU MMDetection builds for the FCs never runs, the head's
    FC neuron does."""
    from mmcv.cnn import ConvModule

    from sdt3_mm.models.neurons.spiking_neuron import SpikingNeuron
    head = _build(
        dict(
            type='sdt3_mm.SpikeConvFCBBoxHead',
            num_shared_convs=1,
            num_cls_convs=0,
            num_shared_fcs=1,
            num_reg_fcs=1,
            in_channels=16,
            conv_out_channels=16,
            fc_out_channels=32,
            roi_feat_size=7,
            num_classes=5,
            neuron_cfg=dict(type='SFANeuron', D=2)))
    convs = [m for m in head.modules() if isinstance(m, ConvModule)]
    assert len(convs) == 1
    assert convs[0].act_cfg['type'] == 'sdt3_mm.SFANeuron'
    assert isinstance(convs[0].activate, SpikingNeuron)
    assert convs[0].activate.D == 2
    fc = head.shared_fcs[0]
    assert fc[0].bias is None and isinstance(fc[1], torch.nn.BatchNorm1d)
    calls = _calls_of(
        dict(relu=head.relu, fc_neuron=head.fc_neuron),
        lambda: head(torch.randn(4, 16, 7, 7)))
    assert isinstance(head.relu, torch.nn.ReLU)
    assert calls == dict(relu=0, fc_neuron=2)


def test_mask_head_fires_neurons_where_fcn_mask_head_has_relus():
    """FCNMaskHead builds ReLUs after its convs and its deconv whatever
    the config; none runs: a neuron follows each conv and the deconv."""
    from sdt3_mm.models.neurons.spiking_neuron import SpikingNeuron
    head = _build(
        dict(
            type='sdt3_mm.SpikeFCNMaskHead',
            num_convs=2,
            in_channels=16,
            conv_out_channels=16,
            num_classes=5))
    relus = {
        name: m
        for name, m in head.named_modules() if isinstance(m, torch.nn.ReLU)
    }
    assert sorted(relus) == ['convs.0.activate', 'convs.1.activate', 'relu']
    neurons = {
        name: m
        for name, m in head.named_modules() if isinstance(m, SpikingNeuron)
    }
    assert sorted(neurons) == [
        'conv_neurons.0', 'conv_neurons.1', 'input_neuron', 'upsample_neuron'
    ]
    calls = _calls_of({
        **relus,
        **neurons
    }, lambda: head(torch.randn(2, 16, 14, 14)))
    assert calls == {**dict.fromkeys(relus, 0), **dict.fromkeys(neurons, 1)}


def test_mask_head_after_nearest_upsampling_needs_no_neuron():
    head = _build(
        dict(
            type='sdt3_mm.SpikeFCNMaskHead',
            num_convs=1,
            in_channels=16,
            conv_out_channels=16,
            num_classes=5,
            upsample_cfg=dict(type='nearest', scale_factor=2)))
    assert head.upsample_neuron is None
    seen, masks = _inputs_of_linear_layers(
        head, lambda: head(torch.randn(3, 16, 14, 14)))
    _assert_spikes(seen, ['convs.0.conv', 'conv_logits'])
    assert masks.shape == (3, 5, 28, 28)
