"""Spiking mask head of Mask R-CNN."""
from mmdet.models.roi_heads.mask_heads import FCNMaskHead

from sdt3_mm.registry import MODELS
from ..layers import replace_relus
from ..neurons import build_neuron


@MODELS.register_module()
class SpikeFCNMaskHead(FCNMaskHead):
    """MMDetection's FCN mask head with an SFA neuron in front of every
    conv.

    ``neuron -> conv3x3 -> norm -> neuron -> ... -> deconv -> neuron ->
    conv1x1``: the RoI features pass a neuron first and a neuron takes the
    place of every ReLU. Targets, loss and mask pasting are MMDetection's.

    Args:
        neuron_cfg (dict): The neurons. Defaults to
            ``dict(type='SFANeuron', D=1)``.
        norm_cfg (dict, optional): Norm after each conv, which keeps the
            neurons' inputs inside the window where they pass gradient
            (see :class:`SpikeConvFCBBoxHead`). Defaults to
            ``dict(type='BN')``.
        *args, **kwargs: Arguments of
            :class:`mmdet.models.roi_heads.FCNMaskHead`; ``upsample_cfg``
            may be a deconv, nearest upsampling or none (bilinear
            upsampling would feed interpolated spikes to the last conv).
    """

    def __init__(self,
                 *args,
                 neuron_cfg=dict(type='SFANeuron', D=1),
                 norm_cfg=dict(type='BN'),
                 **kwargs):
        super().__init__(*args, norm_cfg=norm_cfg, **kwargs)
        if self.upsample_method not in (None, 'deconv', 'nearest'):
            raise ValueError(
                f'{type(self).__name__}: upsample method '
                f'{self.upsample_method!r} would feed interpolated spikes to '
                f'the last conv; use "deconv", "nearest" or None')
        self.input_neuron = build_neuron(neuron_cfg)
        replace_relus(self, neuron_cfg)

    def forward(self, x):
        """Mask logits of RoI features ``N x C x h x w``."""
        return super().forward(self.input_neuron(x))
