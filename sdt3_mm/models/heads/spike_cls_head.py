"""Classifier heads of E-SpikeFormer."""
from mmpretrain.models.heads import ClsHead
from torch import nn

from sdt3_mm.registry import MODELS
from ..neurons import build_neuron


def _check_kd_loss_weight(head, kd_loss_weight):
    """``kd_loss_weight``, refused outside ``[0, 1]`` with the head
    named."""
    if not 0 <= kd_loss_weight <= 1:
        raise ValueError(f'{type(head).__name__}: kd_loss_weight must be in '
                         f'[0, 1], got {kd_loss_weight}')
    return kd_loss_weight


def _pair_losses(head, feats, data_samples, **kwargs):
    """Losses of a head with two classifiers trained on the labels:
    ``(1 - kd_loss_weight) * loss(fc)`` and ``kd_loss_weight *
    loss(fc_kd)``, from the pair of logits its forward returns in
    training."""
    logits, logits_kd = head(feats)
    losses = head._get_loss(logits, data_samples, **kwargs)
    loss_kd = head._get_loss(logits_kd, data_samples, **kwargs)['loss']
    losses['loss'] = (1 - head.kd_loss_weight) * losses['loss']
    losses['loss_kd'] = head.kd_loss_weight * loss_kd
    return losses


@MODELS.register_module()
class SpikeClsHead(ClsHead):
    """The base family's classifier: average pool, neuron, linear.

    The neuron has ``norm=1``: it sends the raw spike count, so the linear
    layer is addition-only on integers.

    For frames (a ``B x T x C x h x w`` last tap, from a backbone given
    ``B x T x C x H x W`` input with ``average_time=False``) each frame is
    pooled, fired and classified on its own and the logits are averaged
    over the frames, as the reference's event model does.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Channels of the last backbone tap.
        neuron_cfg (dict): Config of the neuron after pooling. Defaults to
            the base family's ``dict(type='SFANeuron', D=4, norm=1)``.
        init_cfg (dict): Truncated normal (std 0.02) on the linear layers,
            bias 0, as the reference initialises them.
        **kwargs: ``loss``, ``topk``, ``cal_acc`` of :class:`ClsHead`.
    """

    def __init__(self,
                 num_classes,
                 in_channels,
                 neuron_cfg=dict(type='SFANeuron', D=4, norm=1),
                 init_cfg=dict(
                     type='TruncNormal', layer='Linear', std=0.02, bias=0.),
                 **kwargs):
        super().__init__(init_cfg=init_cfg, **kwargs)
        if num_classes <= 0:
            raise ValueError(f'{type(self).__name__}: num_classes must be '
                             f'positive, got {num_classes}')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.neuron = build_neuron(neuron_cfg)
        self.fc = nn.Linear(in_channels, num_classes)

    def pool(self, feats):
        """Average the last tap over its positions (``N x C``, or ``B x T x
        C`` for frames)."""
        x = feats[-1]
        channel_dim = 2 if x.dim() == 5 else 1
        if x.shape[channel_dim] != self.in_channels:
            raise ValueError(
                f'{type(self).__name__} expects {self.in_channels} input '
                f'channels, got a tap of shape {tuple(x.shape)}')
        return x.flatten(channel_dim + 1).mean(channel_dim + 1)

    def pre_logits(self, feats):
        return self.neuron(self.pool(feats))

    @staticmethod
    def mean_over_frames(logits):
        """Per-frame logits (``B x T x classes``) averaged over the frames;
        per-sample logits unchanged."""
        return logits.mean(1) if logits.dim() == 3 else logits

    def forward(self, feats):
        return self.mean_over_frames(self.fc(self.pre_logits(feats)))


@MODELS.register_module()
class SpikeKDClsHead(SpikeClsHead):
    """The large family's pair of classifiers.

    ``fc`` (the official ``head``) reads the pooled features before any
    neuron; ``fc_kd`` (``head_kd``) reads them after a ``norm=1`` neuron.
    In training the forward returns both logits, as distillation needs;
    in evaluation it returns their mean. Without a teacher both are
    trained on the labels: ``(1 - kd_loss_weight) * loss(fc) +
    kd_loss_weight * loss(fc_kd)``.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Channels of the last backbone tap.
        neuron_cfg (dict): Config of the neuron in front of ``fc_kd``.
            Defaults to the large family's half-up, open-bounds neuron.
        kd_loss_weight (float): Weight of ``fc_kd``'s loss. Defaults to 0.5.
        **kwargs: Arguments of :class:`SpikeClsHead`.
    """

    def __init__(self,
                 num_classes,
                 in_channels,
                 neuron_cfg=dict(
                     type='SFANeuron',
                     D=4,
                     norm=1,
                     rounding='half_up',
                     bounds='open'),
                 kd_loss_weight=0.5,
                 **kwargs):
        super().__init__(num_classes, in_channels, neuron_cfg, **kwargs)
        self.kd_loss_weight = _check_kd_loss_weight(self, kd_loss_weight)
        self.fc_kd = nn.Linear(in_channels, num_classes)

    def forward(self, feats):
        pooled = self.pool(feats)
        logits = self.mean_over_frames(self.fc(pooled))
        logits_kd = self.mean_over_frames(self.fc_kd(self.neuron(pooled)))
        if self.training:
            return logits, logits_kd
        return (logits + logits_kd) / 2

    def loss(self, feats, data_samples, **kwargs):
        return _pair_losses(self, feats, data_samples, **kwargs)


@MODELS.register_module()
class MetaSpikeClsHead(SpikeClsHead):
    """Meta-SpikeFormer's classifier, over T time steps.

    Averages the last tap (``T * B`` deep, from a :class:`MetaSpikeFormer`
    with ``average_time=False``) over its positions, fires a multi-step
    LIF neuron over the T steps, applies ``fc`` (the official ``head``)
    and, with ``kd``, ``fc_kd`` (``head_kd``) to the spikes of every step
    and averages the logits over the steps. With ``kd``, training returns
    both logits and evaluation their mean, as :class:`SpikeKDClsHead`.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Channels of the last backbone tap.
        T (int): Time steps of the head's LIF neuron, the head's one
            source of them (:attr:`time_steps` reads the neuron), as the
            backbone's. Defaults to 4.
        kd (bool): Whether there is an ``fc_kd``. The official checkpoints
            have one. Defaults to True.
        neuron_cfg (dict): The neuron after pooling (``T`` is set from the
            argument above).
            Defaults to ``dict(type='MultiStepLIFNeuron')``.
        kd_loss_weight (float): Weight of ``fc_kd``'s loss. Defaults to
            0.5.
        **kwargs: Arguments of :class:`SpikeClsHead`.
    """

    def __init__(self,
                 num_classes,
                 in_channels,
                 T=4,
                 kd=True,
                 neuron_cfg=dict(type='MultiStepLIFNeuron'),
                 kd_loss_weight=0.5,
                 **kwargs):
        super().__init__(num_classes, in_channels, dict(neuron_cfg, T=T),
                         **kwargs)
        self.kd_loss_weight = _check_kd_loss_weight(self, kd_loss_weight)
        # Without kd there is no second classifier: a plain None attribute,
        # not a None submodule entry (which breaks clients that walk the
        # children, such as mmengine's FLOP-count printout).
        self.fc_kd = nn.Linear(in_channels, num_classes) if kd else None

    @property
    def time_steps(self):
        """The time steps the head runs over: its neuron's."""
        return self.neuron.time_steps

    def pool(self, feats):
        """Average the last tap over its positions, ``T * B`` deep (frames,
        ``B x T x C x h x w``, folded time-major for the neuron)."""
        pooled = super().pool(feats)
        if pooled.dim() == 3:
            if pooled.shape[1] != self.time_steps:
                raise ValueError(
                    f'{type(self).__name__}: {pooled.shape[1]} frames, but '
                    f'the head runs over T={self.time_steps}')
            pooled = pooled.transpose(0, 1).flatten(0, 1)
        return pooled

    def _mean_over_time(self, logits):
        return logits.reshape(self.time_steps, -1,
                              logits.shape[-1]).mean(0)

    def forward(self, feats):
        spikes = self.pre_logits(feats)
        logits = self._mean_over_time(self.fc(spikes))
        if self.fc_kd is None:
            return logits
        logits_kd = self._mean_over_time(self.fc_kd(spikes))
        if self.training:
            return logits, logits_kd
        return (logits + logits_kd) / 2

    def loss(self, feats, data_samples, **kwargs):
        if self.fc_kd is None:
            return super().loss(feats, data_samples, **kwargs)
        return _pair_losses(self, feats, data_samples, **kwargs)
