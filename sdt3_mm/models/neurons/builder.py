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
