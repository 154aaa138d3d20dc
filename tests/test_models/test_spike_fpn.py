import math

import pytest
import torch

from sdt3_mm.models import ESpikeFormer, SpikeFPN


@pytest.mark.parametrize('size', [(64, 64), (97, 131), (50, 75)])
def test_levels_double_from_the_e_spikeformer_taps(size):
    backbone = ESpikeFormer('t', out_indices=(1, 2, 3, 4)).eval()
    neck = SpikeFPN([24, 48, 96, 128],
                    32,
                    num_outs=5,
                    in_strides=[4, 8, 16, 16]).eval()
    with torch.no_grad():
        outs = neck(backbone(torch.randn(2, 3, *size)))
    h, w = size
    for level, out in enumerate(outs):
        stride = 4 * 2**level
        assert out.shape == (2, 32, math.ceil(h / stride),
                             math.ceil(w / stride)), (level, out.shape)


def test_without_in_strides_the_inputs_are_taken_as_doubling():
    neck = SpikeFPN([8, 16, 32], 16, num_outs=4, add_extra_convs='on_input')
    xs = [torch.randn(1, c, s, s) for c, s in ((8, 33), (16, 17), (32, 9))]
    assert [o.shape[-1] for o in neck(xs)] == [33, 17, 9, 5]


def test_every_conv_reads_spikes():
    neck = SpikeFPN([8, 16, 16],
                    16,
                    num_outs=4,
                    in_strides=[4, 8, 8],
                    add_extra_convs='on_output',
                    neuron_cfg=dict(type='SFANeuron', D=1))
    seen = []

    def record(module, args):
        seen.append(args[0].unique())

    convs = [m for m in neck.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 7  # 3 lateral, 3 output, 1 extra
    for conv in convs:
        conv.register_forward_pre_hook(record)
    neck([torch.randn(1, c, s, s) * 3 for c, s in ((8, 16), (16, 8), (16, 8))])
    assert len(seen) == 7
    for values in seen:
        assert set(values.tolist()) <= {0.0, 1.0}


def test_neck_trains_through_its_neurons():
    neck = SpikeFPN([8, 16], 16, num_outs=2, in_strides=[8, 8])
    xs = [
        torch.randn(2, 8, 8, 8, requires_grad=True),
        torch.randn(2, 16, 8, 8, requires_grad=True)
    ]
    sum(o.sum() for o in neck(xs)).backward()
    assert all(x.grad.abs().sum() > 0 for x in xs)
    assert all(p.grad is not None for p in neck.parameters())


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match='one stride per input'):
        SpikeFPN([8, 16], 16, num_outs=2, in_strides=[4])
    with pytest.raises(ValueError, match='cannot form a pyramid'):
        SpikeFPN([8, 16], 16, num_outs=2, in_strides=[4, 32])
    with pytest.raises(ValueError, match='act_cfg is not supported'):
        SpikeFPN([8, 16], 16, num_outs=2, act_cfg=dict(type='ReLU'))
    with pytest.raises(ValueError, match='relu_before_extra_convs'):
        SpikeFPN([8, 16],
                 16,
                 num_outs=3,
                 add_extra_convs='on_output',
                 relu_before_extra_convs=True)
    with pytest.raises(ValueError, match="add_extra_convs must be"):
        SpikeFPN([8, 16], 16, num_outs=3, add_extra_convs='on_top')


def test_convs_keep_spike_codes_in_training():
    """Every conv of the neck reads spikes carrying their code and saves
    the code, not the float spikes: gradients equal those without codes."""
    import copy

    from sdt3_mm.models.layers.spike_code_ops import SpikeConv2d
    from sdt3_mm.models.neurons.spiking_neuron import SpikingNeuron
    torch.manual_seed(0)
    neck = SpikeFPN([16, 32, 32], 16, 4, in_strides=[4, 8, 8]).train()
    convs = [m for m in neck.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(isinstance(m, SpikeConv2d) for m in convs)
    plain = copy.deepcopy(neck)
    for module in plain.modules():
        if isinstance(module, SpikingNeuron):
            module.eval()  # no codes
    inputs = [
        torch.randn(2, c, s, s) * 3 for c, s in ((16, 16), (32, 8), (32, 8))
    ]
    packed = []
    with torch.autograd.graph.saved_tensors_hooks(
            lambda t: packed.append(t.dtype) or t, lambda t: t):
        outs = neck(inputs)
    assert packed.count(torch.uint8) >= len(convs)
    sum(out.square().mean() for out in outs).backward()
    sum(out.square().mean() for out in plain(inputs)).backward()
    for p, q in zip(neck.parameters(), plain.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-7)
