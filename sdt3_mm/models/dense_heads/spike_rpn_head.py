"""Spiking region proposal head."""
from mmcv.cnn import build_norm_layer
from mmdet.models.dense_heads import RPNHead
from torch import nn

from sdt3_mm.registry import MODELS
from ..layers import SpikeConvBN
from ..neurons import build_neuron


@MODELS.register_module()
class SpikeRPNHead(RPNHead):
    """MMDetection's RPN head with an SFA neuron in front of every conv.

    ``neuron -> conv3x3 -> norm -> neuron -> (cls conv, reg conv)``: the
    shared conv reads the spikes of the FPN level and a neuron takes the
    place of the ReLU. Anchors, targets, losses and proposal
    post-processing are MMDetection's.

    Args:
        neuron_cfg (dict): The neurons. Defaults to
            ``dict(type='SFANeuron', D=1)``.
        norm_cfg (dict, optional): Norm after each shared conv. A neuron
            passes gradient only where its input lies in ``[0, D]``;
            without norms, the demo detector's neck and head neurons drifted
            out of that window within three epochs and fired alike for every
            input. Defaults to ``dict(type='BN')``.
        init_cfg (dict): MMDetection's N(0, 0.01) for the output convs,
            Kaiming for the shared convs (with N(0, 0.01) and no norm, the
            neuron after them would not fire at the start).
        *args, **kwargs: Arguments of :class:`mmdet.models.RPNHead`.
    """

    def __init__(self,
                 *args,
                 neuron_cfg=dict(type='SFANeuron', D=1),
                 norm_cfg=dict(type='BN'),
                 init_cfg=[
                     dict(
                         type='Kaiming',
                         layer='Conv2d',
                         mode='fan_in',
                         nonlinearity='relu'),
                     dict(
                         type='Normal',
                         std=0.01,
                         override=[dict(name='rpn_cls'),
                                   dict(name='rpn_reg')])
                 ],
                 **kwargs):
        # Read by _init_layers, which the base constructor calls.
        self.neuron_cfg = neuron_cfg
        self.norm_cfg = norm_cfg
        super().__init__(*args, init_cfg=init_cfg, **kwargs)

    def _init_layers(self):
        """The head's layers (``AnchorHead``'s constructor calls this):
        ``num_convs`` spiking convs (``neuron -> conv3x3 -> norm``), the
        neuron after them, and MMDetection's 1x1 class and box convs."""
        convs = []
        for i in range(self.num_convs):
            in_channels = self.in_channels if i == 0 else self.feat_channels
            norm = None if self.norm_cfg is None else build_norm_layer(
                self.norm_cfg, self.feat_channels)[1]
            conv = nn.Conv2d(
                in_channels,
                self.feat_channels,
                3,
                padding=1,
                bias=norm is None)
            convs.append(SpikeConvBN(conv, norm, self.neuron_cfg))
        self.rpn_conv = nn.Sequential(*convs)
        self.rpn_cls = nn.Conv2d(self.feat_channels,
                                 self.num_base_priors * self.cls_out_channels,
                                 1)
        self.rpn_reg = nn.Conv2d(
            self.feat_channels,
            self.num_base_priors * self.bbox_coder.encode_size, 1)
        self.neuron = build_neuron(self.neuron_cfg)

    def forward_single(self, x):
        """Scores and box deltas of one level.

        Args:
            x (Tensor): One FPN level, ``N x C x H x W``.

        Returns:
            tuple[Tensor, Tensor]: Class scores and box deltas.
        """
        x = self.neuron(self.rpn_conv(x))
        return self.rpn_cls(x), self.rpn_reg(x)
