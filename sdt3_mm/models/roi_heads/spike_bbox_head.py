"""Spiking box heads of two-stage detectors."""
from mmcv.cnn import ConvModule, build_norm_layer
from mmdet.models.roi_heads.bbox_heads import ConvFCBBoxHead
from torch import nn

from sdt3_mm.registry import MODELS
from ..neurons import build_neuron, neuron_act_cfg


@MODELS.register_module()
class SpikeConvFCBBoxHead(ConvFCBBoxHead):
    """MMDetection's conv/FC box head with an SFA neuron in front of every
    conv and FC.

    The RoI features (membrane potentials pooled from the FPN) pass a
    neuron first, and a neuron follows every conv and hidden FC, so each
    conv and FC, the classifier and the regressor included, reads spikes.
    Every conv and hidden FC is followed by a norm, as every conv in the
    backbone is. Targets, losses and post-processing are MMDetection's.

    The branches are built by :meth:`_add_conv_fc_branch`, which
    ``ConvFCBBoxHead``'s constructor calls: convs with the neuron as their
    activation (``act_cfg``), FCs followed by a norm. ``ConvFCBBoxHead``
    builds its ``relu`` regardless (it takes no activation option); the
    forward here fires :attr:`fc_neuron` after each FC instead.

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
            :class:`mmdet.models.roi_heads.ConvFCBBoxHead`, but
            ``with_avg_pool``, which would average spikes.
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
        # Read by _add_conv_fc_branch, which the base constructor calls.
        self.neuron_cfg = neuron_cfg
        super().__init__(*args, norm_cfg=norm_cfg, init_cfg=init_cfg, **kwargs)
        if self.with_avg_pool:
            raise ValueError(
                f'{type(self).__name__}: with_avg_pool would feed averaged '
                f'spikes, not spikes, to the next layer')
        self.input_neuron = build_neuron(neuron_cfg)
        self.fc_neuron = build_neuron(neuron_cfg)

    def _add_conv_fc_branch(self,
                            num_branch_convs,
                            num_branch_fcs,
                            in_channels,
                            is_shared=False):
        """A branch of spiking convs, then spiking FCs.

        Each conv is ``conv3x3 -> norm -> neuron`` (a ``ConvModule`` with
        the neuron as ``act_cfg``); each FC is a bias-free ``Linear`` and
        a norm (the norm's shift takes the bias's place), or a ``Linear``
        with bias when ``norm_cfg`` is None; the forward fires a neuron
        after it. Widths are ``ConvFCBBoxHead``'s.

        Args:
            num_branch_convs (int): Convs of the branch.
            num_branch_fcs (int): FCs of the branch.
            in_channels (int): Channels of the branch's input.
            is_shared (bool): Whether this is the shared branch. Defaults
                to False.

        Returns:
            tuple[nn.ModuleList, nn.ModuleList, int]: The convs, the FCs
            and the width of the branch's output.
        """
        last_layer_dim = in_channels
        branch_convs = nn.ModuleList()
        for i in range(num_branch_convs):
            branch_convs.append(
                ConvModule(
                    last_layer_dim if i == 0 else self.conv_out_channels,
                    self.conv_out_channels,
                    3,
                    padding=1,
                    conv_cfg=self.conv_cfg,
                    norm_cfg=self.norm_cfg,
                    act_cfg=neuron_act_cfg(self.neuron_cfg)))
        if num_branch_convs > 0:
            last_layer_dim = self.conv_out_channels
        branch_fcs = nn.ModuleList()
        if num_branch_fcs > 0:
            # The first FC reads the flattened RoI map, unless a shared FC
            # came before it (average pooling is refused).
            if is_shared or self.num_shared_fcs == 0:
                last_layer_dim *= self.roi_feat_area
            for i in range(num_branch_fcs):
                branch_fcs.append(
                    self._fc(last_layer_dim if i ==
                             0 else self.fc_out_channels))
            last_layer_dim = self.fc_out_channels
        return branch_convs, branch_fcs, last_layer_dim

    def _fc(self, in_features):
        """A hidden FC: ``Linear`` then the norm (``BN`` as ``BN1d``), or
        a ``Linear`` with bias when there is no norm."""
        if self.norm_cfg is None:
            return nn.Linear(in_features, self.fc_out_channels)
        norm_cfg = dict(self.norm_cfg)
        if norm_cfg['type'] == 'BN':
            norm_cfg['type'] = 'BN1d'
        return nn.Sequential(
            nn.Linear(in_features, self.fc_out_channels, bias=False),
            build_norm_layer(norm_cfg, self.fc_out_channels)[1])

    def _branch(self, x, convs, fcs):
        for conv in convs:
            x = conv(x)
        if x.dim() > 2:
            x = x.flatten(1)
        for fc in fcs:
            x = self.fc_neuron(fc(x))
        return x

    def forward(self, x):
        """Class scores and box deltas of RoI features.

        Args:
            x (Tensor): RoI features, ``N x C x h x w``.

        Returns:
            tuple[Tensor | None, Tensor | None]: Class scores and box
            deltas (None without a classifier or a regressor).
        """
        x = self.input_neuron(x)
        for conv in self.shared_convs:
            x = conv(x)
        if self.num_shared_fcs > 0:
            x = self._branch(x, (), self.shared_fcs)
        x_cls = self._branch(x, self.cls_convs, self.cls_fcs)
        x_reg = self._branch(x, self.reg_convs, self.reg_fcs)
        cls_score = self.fc_cls(x_cls) if self.with_cls else None
        bbox_pred = self.fc_reg(x_reg) if self.with_reg else None
        return cls_score, bbox_pred


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
