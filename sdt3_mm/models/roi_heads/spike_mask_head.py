"""Spiking mask head of Mask R-CNN."""
from mmdet.models.roi_heads.mask_heads import FCNMaskHead
from torch import nn

from sdt3_mm.registry import MODELS
from ..neurons import build_neuron


@MODELS.register_module()
class SpikeFCNMaskHead(FCNMaskHead):
    """MMDetection's FCN mask head with an SFA neuron in front of every
    conv.

    ``neuron -> conv3x3 -> norm -> neuron -> ... -> deconv -> neuron ->
    conv1x1``: the RoI features pass a neuron first and a neuron follows
    every conv and the deconv. Layers, targets, loss and mask pasting are
    MMDetection's.

    ``FCNMaskHead`` takes no activation option: it builds ReLUs (in its
    convs' ``ConvModule``\\ s and after the deconv) whatever the config.
    The forward here runs each conv without its activation
    (``conv(x, activate=False)``, ``ConvModule``'s own option) and fires
    this head's neurons where ``FCNMaskHead`` applies the ReLUs.

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
        self.conv_neurons = nn.ModuleList(
            build_neuron(neuron_cfg) for _ in self.convs)
        # Nearest upsampling of spikes is spikes; a deconv's output is not.
        self.upsample_neuron = build_neuron(
            neuron_cfg) if self.upsample_method == 'deconv' else None

    def forward(self, x):
        """Mask logits of RoI features.

        Args:
            x (Tensor): RoI features, ``N x C x h x w``.

        Returns:
            Tensor: Mask logits, ``N x classes x H x W``: ``h x w``
            upsampled by ``upsample_cfg``'s scale factor.
        """
        x = self.input_neuron(x)
        for conv, neuron in zip(self.convs, self.conv_neurons):
            x = neuron(conv(x, activate=False))
        if self.upsample is not None:
            x = self.upsample(x)
            if self.upsample_neuron is not None:
                x = self.upsample_neuron(x)
        return self.conv_logits(x)
