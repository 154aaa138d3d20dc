"""Spiking feature pyramid network."""
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import nn

from sdt3_mm.registry import MODELS
from ..layers import SpikeConv2d, SpikeConvBN


@MODELS.register_module()
class SpikeFPN(BaseModule):
    """FPN in which every conv reads the spikes of an SFA neuron.

    Lateral, top-down and extra levels work as in MMDetection's
    :class:`~mmdet.models.necks.FPN`, with its arguments; each conv
    (lateral 1x1, output 3x3, extra 3x3) is preceded by a neuron, so the
    neck adds and convolves integer spike counts only. Its outputs are
    membrane potentials: the heads put their own neurons in front of their
    convs.

    E-SpikeFormer's last two base-family taps are both at stride 16. The
    reference feeds them to an FPN as if they were at strides 16 and 32,
    so its RoI extractor and anchors are off by 2 on the top levels. Here
    ``in_strides`` says where the inputs really are, and a level whose
    stride does not double is brought down by its lateral conv (3x3,
    stride 2): the outputs are then at ``s, 2s, 4s, ...`` as every stock
    head and RoI extractor expects. MMDetection's ``FPN`` builds every
    lateral conv 1x1 with no option for it, so this neck builds its convs
    itself (the names and ``state_dict`` are those of ``FPN``'s convs,
    each inside a :class:`SpikeConvBN` after its neuron).

    Every conv is followed by a norm (BN by default), as in the backbone:
    a neuron passes gradient only where its input lies in ``[0, D]``, and
    without a norm the neck's outputs drift out of that window in training.

    Args:
        in_channels (list[int]): Channels of each input.
        out_channels (int): Channels of each output.
        num_outs (int): Number of outputs: at least the inputs used
            (``len(in_channels) - start_level``), the rest extra levels; or
            exactly ``end_level - start_level + 1`` with an ``end_level``
            other than -1 or the last input.
        in_strides (Sequence[int], optional): Stride of each input. None
            means each input's stride is twice the previous one's.
            Defaults to None.
        start_level (int): First input used. Defaults to 0.
        end_level (int): Last input used; -1 for the last one. Defaults
            to -1.
        add_extra_convs (bool | str): Source of the extra levels' convs:
            ``'on_input'`` (the last input used; also ``True``),
            ``'on_lateral'`` or ``'on_output'``; False for max pooling of
            the last output. Defaults to False.
        no_norm_on_lateral (bool): No norm after the lateral convs.
            Defaults to False.
        neuron_cfg (dict): The neuron in front of every conv. Defaults to
            ``dict(type='SFANeuron', D=1)``: binary spikes, as the
            reference detection neck uses.
        conv_cfg (dict): The convs. Defaults to :class:`SpikeConv2d`,
            which saves the spikes' one-byte code for backward in training.
        norm_cfg (dict, optional): Norm after each conv. Defaults to
            ``dict(type='BN')``.
        upsample_cfg (dict): Arguments of ``F.interpolate`` in the top-down
            path. Defaults to ``dict(mode='nearest')``.
        act_cfg (dict, optional): Refused: the neuron in front of every
            conv is the non-linearity. Defaults to None.
        relu_before_extra_convs (bool): Refused, as ``act_cfg``. Defaults
            to False.
        init_cfg (dict): Xavier (uniform) on the convs, as ``FPN``.
    """

    def __init__(self,
                 in_channels,
                 out_channels,
                 num_outs,
                 in_strides=None,
                 start_level=0,
                 end_level=-1,
                 add_extra_convs=False,
                 no_norm_on_lateral=False,
                 neuron_cfg=dict(type='SFANeuron', D=1),
                 conv_cfg=dict(type=SpikeConv2d),
                 norm_cfg=dict(type='BN'),
                 upsample_cfg=dict(mode='nearest'),
                 act_cfg=None,
                 relu_before_extra_convs=False,
                 init_cfg=dict(
                     type='Xavier', layer='Conv2d', distribution='uniform')):
        super().__init__(init_cfg=init_cfg)
        for key, value in (('act_cfg', act_cfg), ('relu_before_extra_convs',
                                                  relu_before_extra_convs)):
            if value:
                raise ValueError(
                    f'SpikeFPN: {key} is not supported: the SFA neuron in '
                    f'front of every conv is the non-linearity')
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.num_ins = len(self.in_channels)
        self.num_outs = num_outs
        self._check_levels(self.num_ins, num_outs, start_level, end_level)
        self.start_level = start_level
        self.end_level = end_level
        self.backbone_end_level = self.num_ins if end_level in (
            -1, self.num_ins - 1) else end_level + 1
        self.add_extra_convs = self._extra_source(add_extra_convs)
        self.no_norm_on_lateral = no_norm_on_lateral
        self.upsample_cfg = dict(upsample_cfg)

        def spiking_conv(in_channels, kernel_size, stride=1, norm=True):
            """``neuron -> conv -> norm``, the conv and norm in mmcv's
            ``ConvModule``."""
            conv = ConvModule(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=kernel_size // 2,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg if norm else None,
                act_cfg=None)
            return SpikeConvBN(conv, neuron_cfg=neuron_cfg)

        self.lateral_convs = nn.ModuleList()
        self.fpn_convs = nn.ModuleList()
        used = range(self.start_level, self.backbone_end_level)
        for i, stride in zip(used, self._lateral_strides(in_strides)):
            # A 3x3 conv at stride 2 where the input's stride does not
            # double from the previous one's, else FPN's 1x1.
            self.lateral_convs.append(
                spiking_conv(
                    self.in_channels[i],
                    1 if stride == 1 else 3,
                    stride=stride,
                    norm=not no_norm_on_lateral))
            self.fpn_convs.append(spiking_conv(out_channels, 3))
        if self.add_extra_convs:
            for i in range(num_outs - len(used)):
                # The first extra conv reads its source; the others, the
                # level below.
                on_input = i == 0 and self.add_extra_convs == 'on_input'
                source_channels = self.in_channels[
                    self.backbone_end_level - 1] if on_input else out_channels
                self.fpn_convs.append(
                    spiking_conv(source_channels, 3, stride=2))

    @staticmethod
    def _extra_source(add_extra_convs):
        """``add_extra_convs`` as ``FPN`` reads it: False or a source."""
        sources = ('on_input', 'on_lateral', 'on_output')
        if add_extra_convs is True:
            return 'on_input'
        if add_extra_convs is not False and add_extra_convs not in sources:
            raise ValueError(f'SpikeFPN: add_extra_convs must be a bool or '
                             f'one of {sources}, got {add_extra_convs!r}')
        return add_extra_convs

    @staticmethod
    def _check_levels(num_ins, num_outs, start_level, end_level):
        """Name what MMDetection's FPN asserts without a message."""
        if not 0 <= start_level < num_ins:
            raise ValueError(f'SpikeFPN: start_level must be in '
                             f'0..{num_ins - 1} ({num_ins} inputs), got '
                             f'{start_level}')
        if end_level in (-1, num_ins - 1):
            if num_outs < num_ins - start_level:
                raise ValueError(
                    f'SpikeFPN: num_outs={num_outs} is fewer than the '
                    f'{num_ins - start_level} inputs it uses (in_channels '
                    f'from start_level={start_level})')
        elif not start_level <= end_level < num_ins:
            raise ValueError(f'SpikeFPN: end_level must be -1 or in '
                             f'{start_level}..{num_ins - 1}, got {end_level}')
        elif num_outs != end_level - start_level + 1:
            raise ValueError(
                f'SpikeFPN: with end_level={end_level}, num_outs must be '
                f'{end_level - start_level + 1} (levels {start_level}..'
                f'{end_level}, no extra level), got {num_outs}')

    def forward(self, inputs):
        """The outputs, finest first, for one input per ``in_channels``
        entry (MMDetection's FPN computation).

        Args:
            inputs (Sequence[Tensor]): The backbone's taps, finest first.

        Returns:
            tuple[Tensor]: ``num_outs`` levels of membrane potentials.
        """
        # MMDetection's FPN asserts this with no message; a backbone
        # returning fewer taps than in_channels names (a wrong out_indices)
        # is the usual cause.
        if len(inputs) != self.num_ins:
            raise ValueError(
                f'SpikeFPN: got {len(inputs)} inputs, but in_channels '
                f'{self.in_channels} has {self.num_ins} entries; the '
                f'backbone\'s out_indices must give one tap per entry')
        laterals = [
            lateral_conv(inputs[i + self.start_level])
            for i, lateral_conv in enumerate(self.lateral_convs)
        ]
        # Top-down: each level adds the upsampled level above it.
        for i in range(len(laterals) - 1, 0, -1):
            if 'scale_factor' in self.upsample_cfg:
                upsampled = F.interpolate(laterals[i], **self.upsample_cfg)
            else:
                upsampled = F.interpolate(
                    laterals[i],
                    size=laterals[i - 1].shape[2:],
                    **self.upsample_cfg)
            laterals[i - 1] = laterals[i - 1] + upsampled
        outs = [
            self.fpn_convs[i](lateral) for i, lateral in enumerate(laterals)
        ]
        # Extra levels: max pooling of the last output, or strided convs.
        if not self.add_extra_convs:
            while len(outs) < self.num_outs:
                outs.append(F.max_pool2d(outs[-1], 1, stride=2))
        elif len(outs) < self.num_outs:
            source = dict(
                on_input=inputs[self.backbone_end_level - 1],
                on_lateral=laterals[-1],
                on_output=outs[-1])[self.add_extra_convs]
            outs.append(self.fpn_convs[len(outs)](source))
            while len(outs) < self.num_outs:
                outs.append(self.fpn_convs[len(outs)](outs[-1]))
        return tuple(outs)

    def _lateral_strides(self, in_strides):
        """Stride of each lateral conv: 1, or 2 where an input's stride
        does not double from the previous one."""
        used = range(self.start_level, self.backbone_end_level)
        if in_strides is None:
            return [1 for _ in used]
        in_strides = list(in_strides)
        if len(in_strides) != self.num_ins:
            raise ValueError(
                f'SpikeFPN: in_strides {in_strides} must give one stride '
                f'per input ({self.num_ins} in_channels)')
        first = in_strides[self.start_level]
        strides = []
        for level, i in enumerate(used):
            target = first * 2**level
            if target not in (in_strides[i], 2 * in_strides[i]):
                raise ValueError(
                    f'SpikeFPN: in_strides {in_strides} cannot form a '
                    f'pyramid doubling from stride {first}: input {i} is at '
                    f'stride {in_strides[i]}, its level needs {target}')
            strides.append(target // in_strides[i])
        return strides
