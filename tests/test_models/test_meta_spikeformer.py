"""Meta-SpikeFormer (Spike-driven Transformer V2): the reference case of
its original code (``meta_reference``), presets, time steps and state."""
import pytest
import torch
from reference_networks import META_SMALL, meta_spikeformer_reference

from sdt3_mm.models import MetaSpikeClsHead, MetaSpikeFormer


def test_reference_eval_logits(meta_reference):
    backbone, head = meta_spikeformer_reference(meta_reference)
    backbone.eval(), head.eval()
    with torch.no_grad():
        logits = head(backbone(meta_reference['input']))
    assert (logits - meta_reference['eval_logits']).abs().max() <= 1e-4


def test_reference_train_logits_and_input_gradient(meta_reference):
    backbone, head = meta_spikeformer_reference(meta_reference)
    x = meta_reference['input'].clone().requires_grad_()
    logits, _ = head(backbone(x))  # training: (head, head_kd)
    assert (logits - meta_reference['train_logits']).abs().max() <= 1e-4
    logits.sum().backward()
    expected = meta_reference['train_input_grad']
    error = (x.grad - expected).abs().max() / expected.abs().max()
    assert error <= 1e-4


@pytest.mark.parametrize('arch, params', [('15m', 15_112_208),
                                          ('31m', 31_333_864),
                                          ('55m', 55_350_248),
                                          ('124m', 123_741_160)])
def test_preset_parameter_counts(arch, params):
    backbone = MetaSpikeFormer(arch)
    head = MetaSpikeClsHead(1000, backbone.stage_channels[-1], kd=False)
    count = sum(p.numel() for m in (backbone, head) for p in m.parameters())
    assert count == params


@pytest.mark.parametrize('T', [1, 4])
def test_taps_and_logits_for_t_steps(T):
    x = torch.randn(2, 3, 64, 48)
    dense = MetaSpikeFormer(META_SMALL, T=T, out_indices=(1, 2, 3, 4)).eval()
    with torch.no_grad():
        taps = dense(x)
    assert [tuple(t.shape) for t in taps] == [(2, 32, 16, 12), (2, 64, 8, 6),
                                              (2, 128, 4, 3), (2, 160, 4, 3)]
    stepwise = MetaSpikeFormer(META_SMALL, T=T, average_time=False).eval()
    head = MetaSpikeClsHead(7, 160, T=T).eval()
    with torch.no_grad():
        feats = stepwise(x)
        assert feats[-1].shape == (T * 2, 160, 4, 3)
        assert head(feats).shape == (2, 7)


def test_no_state_leaks_between_calls():
    torch.manual_seed(0)
    model = MetaSpikeFormer(META_SMALL, T=4).eval()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = 0.  # a train forward leaves the stats alone
    a, b = torch.randn(1, 3, 32, 32), torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        first = model(a)[0]
        model(b)
        model.train()(b)
        again = model.eval()(a)[0]
    assert torch.equal(first, again)


def test_neurons_of_v2_are_refused_sfa_settings():
    with pytest.raises(TypeError, match="no 'D'"):
        MetaSpikeFormer('15m', D=4)
