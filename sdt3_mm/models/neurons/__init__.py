"""Spiking neurons: the contract every tool dispatches on, and its neurons.

* :mod:`.spiking_neuron`: :class:`SpikingNeuron` (the contract) and the
  one-byte spike code its outputs carry in training.
* :mod:`.sfa_neuron`: the SFA neuron of Spike-driven Transformer V3.
* :mod:`.lif_neuron`: the multi-step LIF neuron of V2.
* :mod:`.builder`: :func:`build_neuron`, a neuron from its config, and
  :func:`neuron_act_cfg`, a neuron's config as mmcv's ``act_cfg``.

This package imports nothing else of :mod:`sdt3_mm.models`.
"""
from .builder import build_neuron, neuron_act_cfg
from .lif_neuron import MultiStepLIFNeuron
from .sfa_neuron import SFANeuron
from .spiking_neuron import (SpikeCode, SpikingNeuron, reshape_spikes,
                             spike_code_of, spiking_neurons)

__all__ = [
    'MultiStepLIFNeuron', 'SFANeuron', 'SpikeCode', 'SpikingNeuron',
    'build_neuron', 'neuron_act_cfg', 'reshape_spikes', 'spike_code_of',
    'spiking_neurons'
]
