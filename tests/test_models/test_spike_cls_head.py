import pytest
import torch
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

from sdt3_mm.models import SpikeClsHead, SpikeKDClsHead


def _samples(labels):
    return [DataSample().set_gt_label(label) for label in labels]


def test_base_head_pools_spikes_and_classifies():
    head = SpikeClsHead(num_classes=5, in_channels=8)
    tap = torch.rand(2, 8, 3, 3) * 3
    pooled = tap.flatten(2).mean(2)
    expected = head.fc(torch.round(torch.clamp(pooled, 0, 4)))
    assert torch.equal(head((tap, )), expected)


def test_kd_head_train_pair_and_eval_mean():
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        head = SpikeKDClsHead(num_classes=4, in_channels=8)
    head.init_weights()
    tap = torch.rand(2, 8, 2, 2) * 5
    head.train()
    logits, logits_kd = head((tap, ))
    pooled = tap.flatten(2).mean(2)
    assert torch.equal(logits, head.fc(pooled))
    assert torch.equal(logits_kd,
                       head.fc_kd(torch.floor(pooled.clamp(0, 4) + 0.5)))
    head.eval()
    assert torch.allclose(head((tap, )), (logits + logits_kd) / 2)


def test_kd_head_loss_trains_both_classifiers():
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        head = SpikeKDClsHead(num_classes=4, in_channels=8).train()
    losses = head.loss((torch.rand(2, 8, 2, 2) * 5, ), _samples([1, 3]))
    assert set(losses) == {'loss', 'loss_kd'}
    sum(losses.values()).backward()
    assert head.fc.weight.grad.abs().sum() > 0
    assert head.fc_kd.weight.grad.abs().sum() > 0


def test_wrong_channels_are_named():
    head = SpikeClsHead(num_classes=5, in_channels=8)
    with pytest.raises(ValueError, match='expects 8 input channels'):
        head((torch.rand(1, 6, 2, 2), ))


@pytest.mark.parametrize('kd', [True, False])
def test_meta_head_losses_with_and_without_kd(kd):
    from torch.nn.functional import cross_entropy

    from sdt3_mm.models import MetaSpikeClsHead
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        head = MetaSpikeClsHead(
            num_classes=4, in_channels=8, T=2, kd=kd,
            kd_loss_weight=0.25).train()
    feats = (torch.rand(2 * 3, 8, 2, 2) * 3, )
    labels = torch.tensor([1, 3, 0])
    losses = head.loss(feats, _samples(labels))
    if kd:
        logits, logits_kd = head(feats)
        assert set(losses) == {'loss', 'loss_kd'}
        assert torch.allclose(losses['loss'],
                              0.75 * cross_entropy(logits, labels))
        assert torch.allclose(losses['loss_kd'],
                              0.25 * cross_entropy(logits_kd, labels))
    else:
        assert set(losses) == {'loss'}
        assert torch.allclose(losses['loss'],
                              cross_entropy(head(feats), labels))


def test_kd_loss_weight_outside_0_1_is_named():
    from sdt3_mm.models import MetaSpikeClsHead
    with pytest.raises(ValueError, match='MetaSpikeClsHead: kd_loss_weight'):
        MetaSpikeClsHead(num_classes=4, in_channels=8, kd_loss_weight=2)
    with pytest.raises(ValueError, match='SpikeKDClsHead: kd_loss_weight'):
        SpikeKDClsHead(num_classes=4, in_channels=8, kd_loss_weight=-1)
