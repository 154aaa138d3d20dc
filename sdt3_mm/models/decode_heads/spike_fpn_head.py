"""Spiking Semantic FPN decode head."""
import math

from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from torch import nn

from sdt3_mm.registry import MODELS
from ..neurons import build_neuron, neuron_act_cfg


@MODELS.register_module()
class SpikeFPNHead(BaseDecodeHead):
    """The Semantic FPN head (MMSegmentation's ``FPNHead``) with an SFA
    neuron in front of every conv.

    Each FPN level passes a neuron, then its scale head (``conv3x3 -> norm
    -> neuron``, with a 2x upsampling after each conv down to the finest
    level's stride); the spike maps of the levels are summed and the
    classifier (a 1x1 conv) reads the sum, an integer count. Upsampling is
    nearest-neighbour throughout, so every conv reads spike counts, never
    interpolated values. Losses and inference are MMSegmentation's.

    The scale heads are built here, as ``FPNHead`` builds them, with the
    neurons as their ``ConvModule``\\ s' activations (``act_cfg``) and
    ``nn.Upsample(mode='nearest')`` between them: ``FPNHead`` upsamples
    bilinearly and takes no option for it. ``nn.Upsample`` also follows
    the input size under tracing, where mmseg's ``Upsample`` computes it
    with Python integers that a tracer or ONNX export freezes. The module
    names and the ``state_dict`` are ``FPNHead``'s.

    Args:
        feature_strides (Sequence[int]): Stride of each input level, the
            finest first; each a power of two.
        neuron_cfg (dict): The neurons. Defaults to
            ``dict(type='SFANeuron', D=4)``, as the reference's quantised
            segmentation head.
        norm_cfg (dict, optional): Norm after each conv, which keeps the
            neurons' inputs inside the window where they pass gradient.
            Defaults to ``dict(type='BN')``.
        **kwargs: Arguments of
            :class:`mmseg.models.decode_heads.decode_head.BaseDecodeHead`
            (``in_channels``, ``channels``, ``num_classes``, ...) but
            ``act_cfg`` (the neurons are the activations) and
            ``input_transform`` (always ``'multiple_select'``).
    """

    def __init__(self,
                 feature_strides,
                 neuron_cfg=dict(type='SFANeuron', D=4),
                 norm_cfg=dict(type='BN'),
                 **kwargs):
        if 'act_cfg' in kwargs:
            raise ValueError(
                f'{type(self).__name__}: act_cfg is not supported: the '
                f'neurons (neuron_cfg) are the activations')
        if 'input_transform' in kwargs:
            raise ValueError(
                f'{type(self).__name__}: input_transform is always '
                f'"multiple_select" (in_index picks the levels)')
        super().__init__(
            input_transform='multiple_select',
            norm_cfg=norm_cfg,
            act_cfg=neuron_act_cfg(neuron_cfg),
            **kwargs)
        self.feature_strides = self._check_strides(feature_strides)
        self.scale_heads = nn.ModuleList(
            self._scale_head(i) for i in range(len(feature_strides)))
        self.input_neuron = build_neuron(neuron_cfg)

    def _check_strides(self, feature_strides):
        """Name what ``FPNHead`` asserts without a message."""
        strides = list(feature_strides)
        if len(strides) != len(self.in_channels):
            raise ValueError(
                f'{type(self).__name__}: feature_strides {strides} must '
                f'give one stride per level of in_channels '
                f'{self.in_channels}')
        if min(strides) != strides[0]:
            raise ValueError(
                f'{type(self).__name__}: feature_strides {strides} must '
                f'start with the finest level')
        return feature_strides

    def _scale_head(self, level):
        """``conv3x3 -> norm -> neuron``, each followed by a nearest 2x
        upsampling, as many times as the level's stride halves to the
        finest one's (once at the finest level, without upsampling)."""
        strides = self.feature_strides
        length = max(1, int(math.log2(strides[level]) - math.log2(strides[0])))
        layers = []
        for k in range(length):
            layers.append(
                ConvModule(
                    self.in_channels[level] if k == 0 else self.channels,
                    self.channels,
                    3,
                    padding=1,
                    conv_cfg=self.conv_cfg,
                    norm_cfg=self.norm_cfg,
                    act_cfg=self.act_cfg))
            if strides[level] != strides[0]:
                layers.append(nn.Upsample(scale_factor=2, mode='nearest'))
        return nn.Sequential(*layers)

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
