"""Frames (``B x T x C x H x W``, event frames) through the backbones and
the classifier heads: folded into the batch time-major, each frame run on
its own by stateless neurons, taps averaged over the frames (dense heads)
or kept per frame for a head that averages its logits over them."""
import pytest
import torch

from sdt3_mm.models import ESpikeFormer, MetaSpikeFormer
from sdt3_mm.models.heads.spike_cls_head import MetaSpikeClsHead, SpikeClsHead


def _backbone(**kwargs):
    torch.manual_seed(0)
    model = ESpikeFormer(
        arch='t', in_channels=2, out_indices=(2, 4), **kwargs).eval()
    # BN statistics away from their defaults
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2)
    return model


def _frames(batch=2, frames=3, size=32):
    torch.manual_seed(1)
    return (torch.rand(batch, frames, 2, size, size) > 0.7).float()


def test_each_frame_runs_on_its_own():
    model = _backbone(average_time=False)
    x = _frames()
    with torch.no_grad():
        taps = model(x)
        for t in range(x.shape[1]):
            alone = model(x[:, t])
            for tap, single in zip(taps, alone):
                assert tap.shape[:2] == (2, 3)
                assert torch.equal(tap[:, t], single), t


def test_folding_is_time_major_and_taps_average_over_frames():
    model = _backbone()
    x = _frames()
    with torch.no_grad():
        averaged = model(x)
        folded = model(x.transpose(0, 1).flatten(0, 1))  # frame t at t*B+b
    for tap, flat in zip(averaged, folded):
        assert tap.shape == (2, ) + flat.shape[1:]
        assert torch.equal(tap, flat.unflatten(0, (3, 2)).mean(0))


def test_frames_meet_in_bn_batch_statistics_in_training():
    """Training mode: one BN batch over all frames of all samples."""
    model = _backbone(average_time=False).train()
    x = _frames()
    with torch.no_grad():
        together = model(x)[-1][:, 0]
        alone = model(x[:, :1])[-1][:, 0]
    assert not torch.equal(together, alone)


def test_classifier_head_averages_logits_over_frames(mmpretrain_scope):
    torch.manual_seed(0)
    backbone = _backbone(average_time=False)
    head = SpikeClsHead(num_classes=300, in_channels=128).eval()
    x = _frames()
    with torch.no_grad():
        feats = backbone(x)
        logits = head(feats)
        per_frame = torch.stack([head((feats[-1][:, t], )) for t in range(3)],
                                1)
    assert logits.shape == (2, 300)
    assert torch.allclose(logits, per_frame.mean(1), atol=1e-6)


def test_wrong_frame_channels_are_named():
    model = _backbone()
    with pytest.raises(ValueError, match='frames of 2 channels'):
        model(torch.zeros(2, 3, 3, 32, 32))
    with pytest.raises(ValueError, match='no frames'):
        model(torch.zeros(2, 0, 2, 32, 32))


def test_multi_step_backbone_takes_frames_as_its_time_steps(
        mmpretrain_scope):
    torch.manual_seed(0)
    model = MetaSpikeFormer(
        arch='15m', T=2, in_channels=2, out_indices=(4, ),
        average_time=False).eval()
    head = MetaSpikeClsHead(
        num_classes=10, in_channels=360, T=2, kd=False).eval()
    x = _frames(frames=2)
    with torch.no_grad():
        feats = model(x)
        assert feats[-1].shape[:2] == (2, 2)
        assert head(feats).shape == (2, 10)
    with pytest.raises(ValueError, match='3 frames per sample'):
        model(_frames(frames=3))


def test_energy_counts_every_frame_once():
    """Per sample, SpikeCounter's energy of T frames is the sum of the
    frames' energies (folded frames are counted once each, not T times
    or 1 / T)."""
    from sdt3_mm.analysis import SpikeCounter
    model = _backbone()
    x = _frames(batch=1)
    with torch.no_grad(), SpikeCounter(model) as together:
        model(x)
        together.add_images(1)
    separate = []
    for t in range(3):
        with torch.no_grad(), SpikeCounter(model) as counter:
            model(x[:, t])
            counter.add_images(1)
        separate.append(counter.summary()['energy_mj'])
    assert together.summary()['energy_mj'] == pytest.approx(
        sum(separate), rel=1e-6)


def test_energy_summary_reports_frames_times_time_steps():
    """Clips of T = 3 frames through stateless SFA neurons (D = 4): the
    summary's T x D is 3 x 4, per layer too; clips of another length in
    the same count are refused."""
    from sdt3_mm.analysis import SpikeCounter
    model = _backbone()
    with torch.no_grad(), SpikeCounter(model) as counter:
        model(_frames())
        counter.add_images(2, frames=3)
    summary = counter.summary()
    assert summary['T'] == [3] and summary['D'] == [4]
    assert {row['T'] for row in summary['layers'] if row['op'] == 'AC'} == {3}
    assert {row['T'] for row in summary['neurons']} == {3}
    with pytest.raises(
            ValueError, match='images of 2 frames after images '
            'of 3'):
        counter.add_images(1, frames=2)
    with pytest.raises(ValueError, match='frames must be a positive'):
        counter.add_images(1, frames=0)
