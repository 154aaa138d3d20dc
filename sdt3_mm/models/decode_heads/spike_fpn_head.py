"""Spiking Semantic FPN decode head."""
from mmseg.models.decode_heads import FPNHead
from mmseg.models.utils import Upsample, resize
from torch import nn

from sdt3_mm.registry import MODELS
from ..layers import replace_relus
from ..neurons import build_neuron


@MODELS.register_module()
class SpikeFPNHead(FPNHead):
    """MMSegmentation's Semantic FPN head with an SFA neuron in front of
    every conv.

    Each FPN level passes a neuron, then its scale head (``conv3x3 -> norm
    -> neuron``, with a 2x upsampling after each conv down to the finest
    level's stride); the spike maps of the levels are summed and the
    classifier (a 1x1 conv) reads the sum, an integer count. Upsampling is
    nearest-neighbour throughout, so every conv reads spike counts, never
    interpolated values. Losses and inference are MMSegmentation's.

    Args:
        neuron_cfg (dict): The neurons. Defaults to
            ``dict(type='SFANeuron', D=4)``, as the reference's quantised
            segmentation head.
        norm_cfg (dict, optional): Norm after each conv, which keeps the
            neurons' inputs inside the window where they pass gradient.
            Defaults to ``dict(type='BN')``.
        *args, **kwargs: Arguments of
            :class:`mmseg.models.decode_heads.FPNHead` (``feature_strides``,
            ``in_channels``, ``channels``, ``num_classes``, ...).
    """

    def __init__(self,
                 *args,
                 neuron_cfg=dict(type='SFANeuron', D=4),
                 norm_cfg=dict(type='BN'),
                 **kwargs):
        super().__init__(*args, norm_cfg=norm_cfg, **kwargs)
        self.input_neuron = build_neuron(neuron_cfg)
        replace_relus(self, neuron_cfg)
        # FPNHead's 2x upsamplings become nearest-neighbour torch modules:
        # spike counts stay integers, and the size follows the input under
        # tracing (mmseg's Upsample computes it with Python ints, which a
        # tracer or ONNX export freezes at the traced size).
        for module in list(self.modules()):
            for name, child in module.named_children():
                if isinstance(child, Upsample):
                    setattr(module, name,
                            nn.Upsample(
                                scale_factor=child.scale_factor,
                                mode='nearest'))

    def forward(self, inputs):
        """Segmentation logits at the finest level's stride.

        Args:
            inputs (list[Tensor]): FPN levels, finest first.

        Returns:
            Tensor: ``N x num_classes x H x W`` logits.
        """
        x = [
            self.input_neuron(level)
            for level in self._transform_inputs(inputs)
        ]
        output = self.scale_heads[0](x[0])
        for i in range(1, len(self.feature_strides)):
            output = output + resize(
                self.scale_heads[i](x[i]),
                size=output.shape[2:],
                mode='nearest')
        return self.cls_seg(output)
