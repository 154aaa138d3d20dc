"""Building a neuron from its config."""
from torch import nn

from sdt3_mm.registry import MODELS, build_in_scope


def build_neuron(neuron_cfg):
    """Build a neuron from its config, or ``nn.Identity`` for ``None``.

    Args:
        neuron_cfg (dict, optional): Config of a registered neuron (any
            :class:`~.spiking_neuron.SpikingNeuron`, e.g.
            ``dict(type='SFANeuron', D=4)``), built in ``sdt3_mm``'s scope;
            ``None`` where the input is already spikes or real values.

    Returns:
        nn.Module: The neuron, or ``nn.Identity()``.
    """
    if neuron_cfg is None:
        return nn.Identity()
    return build_in_scope(MODELS, neuron_cfg)


def neuron_act_cfg(neuron_cfg):
    """A neuron's config as the ``act_cfg`` of mmcv's ``ConvModule``.

    ``ConvModule`` builds its activation in the caller's registry scope
    (``mmdet``, ``mmseg``), where a bare ``type='SFANeuron'``, as our
    configs name neurons, is unknown; the type is therefore named in the
    ``sdt3_mm`` scope (``'sdt3_mm.SFANeuron'``), which mmengine resolves
    from any scope.

    Args:
        neuron_cfg (dict, optional): Config of the neuron; ``None`` for no
            activation.

    Returns:
        dict | None: The activation config.
    """
    if neuron_cfg is None:
        return None
    cfg = dict(neuron_cfg)
    if isinstance(cfg['type'], str) and '.' not in cfg['type']:
        cfg['type'] = f'sdt3_mm.{cfg["type"]}'
    return cfg
