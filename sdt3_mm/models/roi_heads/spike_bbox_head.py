"""Spiking box heads of two-stage detectors."""
from mmcv.cnn import build_norm_layer
from mmdet.models.roi_heads.bbox_heads import ConvFCBBoxHead
from torch import nn

from sdt3_mm.registry import MODELS
from ..layers import replace_relus
from ..neurons import build_neuron


@MODELS.register_module()
class SpikeConvFCBBoxHead(ConvFCBBoxHead):
    """MMDetection's conv/FC box head with an SFA neuron in front of every
    conv and FC.

    The RoI features (membrane potentials pooled from the FPN) pass a
    neuron first, and a neuron takes the place of every ReLU, so each conv
    and FC, the classifier and the regressor included, reads spikes.
    Every conv and hidden FC is followed by a norm, as every conv in the
    backbone is. Targets, losses and post-processing are MMDetection's.

    Args:
        neuron_cfg (dict): The neurons. Defaults to
            ``dict(type='SFANeuron', D=1)``.
        norm_cfg (dict, optional): Norm after each conv and hidden FC
            (``BN`` becomes ``BN1d`` after an FC). A hidden FC reads
            thousands of spikes, so a small common shift of its weights
            moves all its outputs at once; without a norm they leave the
            neuron's ``[0, D]`` window, where alone it passes gradient, and
            the head settles on one output for every RoI. Defaults to
            ``dict(type='BN')``.
        init_cfg (list[dict]): MMDetection's initialisation (Xavier on the
            hidden FCs, N(0, 0.01) and N(0, 0.001) on the classifier and
            the regressor), with the Xavier init given by layer type, so
            that it leaves the norms after the FCs alone.
        *args, **kwargs: Arguments of
            :class:`mmdet.models.roi_heads.ConvFCBBoxHead`.
    """

    def __init__(
            self,
            *args,
            neuron_cfg=dict(type='SFANeuron', D=1),
            norm_cfg=dict(type='BN'),
            init_cfg=[
                dict(type='Xavier', distribution='uniform', layer='Linear'),
                dict(type='Normal', std=0.01, override=dict(name='fc_cls')),
                dict(type='Normal', std=0.001, override=dict(name='fc_reg'))
            ],
            **kwargs):
        super().__init__(*args, norm_cfg=norm_cfg, init_cfg=init_cfg, **kwargs)
        if self.with_avg_pool:
            raise ValueError(
                f'{type(self).__name__}: with_avg_pool would feed averaged '
                f'spikes, not spikes, to the next layer')
        if norm_cfg is not None:
            fc_norm_cfg = dict(norm_cfg)
            if fc_norm_cfg['type'] == 'BN':
                fc_norm_cfg['type'] = 'BN1d'
            for fcs in (self.shared_fcs, self.cls_fcs, self.reg_fcs):
                for i, fc in enumerate(fcs):
                    fc.bias = None  # the norm's shift takes its place
                    fcs[i] = nn.Sequential(
                        fc,
                        build_norm_layer(fc_norm_cfg, fc.out_features)[1])
        self.input_neuron = build_neuron(neuron_cfg)
        replace_relus(self, neuron_cfg)

    def forward(self, x):
        """Class scores and box deltas of RoI features ``N x C x h x w``."""
        return super().forward(self.input_neuron(x))


@MODELS.register_module()
class SpikeShared2FCBBoxHead(SpikeConvFCBBoxHead):
    """Two shared spiking FCs, then the classifier and the regressor.

    Args:
        fc_out_channels (int): Width of the FCs. Defaults to 1024.
        *args, **kwargs: Arguments of :class:`SpikeConvFCBBoxHead`.
    """

    def __init__(self, fc_out_channels=1024, *args, **kwargs):
        super().__init__(
            num_shared_convs=0,
            num_shared_fcs=2,
            num_cls_convs=0,
            num_cls_fcs=0,
            num_reg_convs=0,
            num_reg_fcs=0,
            fc_out_channels=fc_out_channels,
            *args,
            **kwargs)
