"""Meta-SpikeFormer, the backbone of Spike-driven Transformer V2."""
from sdt3_mm.registry import MODELS
from ..utils.spike_layers import ConvBlock, TransformerBlock, meta_attention
from .e_spikeformer import ESpikeFormer


@MODELS.register_module()
class MetaSpikeFormer(ESpikeFormer):
    """Meta-SpikeFormer backbone (Spike-driven Transformer V2).

    From "Spike-driven Transformer V2: Meta Spiking Neural Network
    Architecture Inspiring the Design of Next-generation Neuromorphic
    Chips" (Yao et al., ICLR 2024); the original code is
    BICLab/Spike-Driven-Transformer-V2, whose checkpoints load here.

    E-SpikeFormer's base-family layout (same stages, strides, taps and
    official key names) with binary spikes of multi-step LIF neurons over
    ``T`` time steps instead of SFA integers, RepConv projections in the
    attention (output neuron threshold 0.5), transformer blocks without a
    SepConv, and SepConvs without a neuron between their depthwise and
    second pointwise conv.

    The image is repeated over the T steps and the steps are folded into
    the batch, time-major (``T * B``), for every conv and BN
    (:class:`SpikingBackbone`). With ``average_time=True`` (for dense
    heads) each tap is averaged over the T steps (``B x C x H x W``); with
    False (for :class:`MetaSpikeClsHead`, whose neuron runs over time)
    taps stay ``T * B`` deep.

    Args:
        arch (str | dict): ``'15m'``, ``'31m'``, ``'55m'``, ``'124m'``, or
            ``dict(family='meta', embed_dims=[C0, C1, C2, C3],
            num_heads=8)``. Defaults to ``'55m'``.
        T (int): Time steps. Defaults to 4.
        average_time (bool): Average each tap over the time steps.
            Defaults to True.
        **kwargs: ``in_channels``, ``out_indices``, ``frozen_stages``,
            ``norm_eval``, ``drop_path_rate``, ``zero_init_residual``,
            ``with_cp``, ``attn_cfg`` (``scale``, default 0.125),
            ``init_cfg`` (official V2 checkpoints load and convert as
            E-SpikeFormer's do) of :class:`ESpikeFormer`.
    """

    arch_zoo = {
        '15m': dict(family='meta', embed_dims=[64, 128, 256, 360]),
        '31m': dict(family='meta', embed_dims=[96, 192, 384, 480]),
        '55m': dict(family='meta', embed_dims=[128, 256, 512, 640]),
        '124m': dict(family='meta', embed_dims=[192, 384, 768, 960]),
    }
    families = ('meta', )

    def __init__(self, arch='55m', T=4, average_time=True, **kwargs):
        for key in ('D', 'neuron_cfg', 'layer_scale_init_value', 'time_steps'):
            if key in kwargs:
                raise TypeError(f'MetaSpikeFormer has no {key!r}: its '
                                f'neurons are multi-step LIF over T steps')
        super().__init__(
            arch=arch,
            neuron_cfg=dict(type='MultiStepLIFNeuron', T=T),
            time_steps=T,
            average_time=average_time,
            **kwargs)
        self.T = T

    def _make_block(self, stage, channels, num_heads, drop_path_rate,
                    layer_scale_init_value):
        if stage < 3:
            return ConvBlock(
                channels,
                self.neuron_cfg,
                sepconv=True,
                bias=False,
                drop_path_rate=drop_path_rate,
                linear_dw_pw=True)
        attention = meta_attention(channels, num_heads, self.neuron_cfg,
                                   dict(self.neuron_cfg, v_threshold=0.5),
                                   **self.attn_cfg)
        return TransformerBlock(
            channels,
            attention,
            self.neuron_cfg,
            sepconv=False,
            drop_path_rate=drop_path_rate)
