"""Spiking feature pyramid network."""
from mmcv.cnn import ConvModule
from mmdet.models.necks import FPN

from sdt3_mm.registry import MODELS
from ..layers import SpikeConv2d, SpikeConvBN


@MODELS.register_module()
class SpikeFPN(FPN):
    """FPN in which every conv reads the spikes of an SFA neuron.

    Lateral, top-down and extra levels work as in MMDetection's
    :class:`~mmdet.models.necks.FPN`; each conv (lateral 1x1, output 3x3,
    extra 3x3) is preceded by a neuron, so the neck adds and convolves
    integer spike counts only. Its outputs are membrane potentials: the
    heads put their own neurons in front of their convs.

    E-SpikeFormer's last two base-family taps are both at stride 16. The
    reference feeds them to an FPN as if they were at strides 16 and 32,
    so its RoI extractor and anchors are off by 2 on the top levels. Here
    ``in_strides`` says where the inputs really are, and a level whose
    stride does not double is brought down by its lateral conv (3x3,
    stride 2): the outputs are then at ``s, 2s, 4s, ...`` as every stock
    head and RoI extractor expects.

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
        neuron_cfg (dict): The neuron in front of every conv. Defaults to
            ``dict(type='SFANeuron', D=1)``: binary spikes, as the
            reference detection neck uses.
        norm_cfg (dict, optional): Norm after each conv. Defaults to
            ``dict(type='BN')``.
        **kwargs: ``start_level``, ``end_level``, ``add_extra_convs``,
            ``conv_cfg`` (default: :class:`SpikeConv2d`, which saves the
            spikes' one-byte code for backward in training),
            ``no_norm_on_lateral``, ``upsample_cfg``, ``init_cfg`` of
            MMDetection's FPN.
    """

    def __init__(self,
                 in_channels,
                 out_channels,
                 num_outs,
                 in_strides=None,
                 neuron_cfg=dict(type='SFANeuron', D=1),
                 norm_cfg=dict(type='BN'),
                 **kwargs):
        for key in ('act_cfg', 'relu_before_extra_convs'):
            if kwargs.get(key):
                raise ValueError(
                    f'SpikeFPN: {key} is not supported: the SFA neuron in '
                    f'front of every conv is the non-linearity')
        self._check_levels(
            len(in_channels), num_outs, kwargs.get('start_level', 0),
            kwargs.get('end_level', -1))
        kwargs.setdefault('conv_cfg', dict(type=SpikeConv2d))
        super().__init__(
            list(in_channels),
            out_channels,
            num_outs,
            norm_cfg=norm_cfg,
            **kwargs)
        lateral_strides = self._lateral_strides(in_strides)
        for i, stride in enumerate(lateral_strides):
            if stride == 2:
                old = self.lateral_convs[i]
                self.lateral_convs[i] = ConvModule(
                    in_channels[self.start_level + i],
                    out_channels,
                    3,
                    stride=2,
                    padding=1,
                    conv_cfg=kwargs.get('conv_cfg'),
                    norm_cfg=norm_cfg if old.with_norm else None,
                    act_cfg=None)
        for convs in (self.lateral_convs, self.fpn_convs):
            for i, conv in enumerate(convs):
                convs[i] = SpikeConvBN(conv, neuron_cfg=neuron_cfg)

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
        """The outputs for one input per ``in_channels`` entry."""
        # MMDetection's FPN asserts this with no message; a backbone
        # returning fewer taps than in_channels names (a wrong out_indices)
        # is the usual cause.
        if len(inputs) != self.num_ins:
            raise ValueError(
                f'SpikeFPN: got {len(inputs)} inputs, but in_channels '
                f'{self.in_channels} has {self.num_ins} entries; the '
                f'backbone\'s out_indices must give one tap per entry')
        return super().forward(inputs)

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
