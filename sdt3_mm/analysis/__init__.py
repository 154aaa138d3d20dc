"""Deployment analysis: spike-driven execution, BN folding, spike counts
and energy."""
from .bn_folding import fold_bn, fold_into, merge_stacked
from .energy import ENERGY_PRESETS, SpikeCounter, attention_flops, layer_flops
from .spike_driven import SpikeDriven, SpikeDrivenReport
from .spike_sources import SpikeSources, weight_layers

__all__ = [
    'ENERGY_PRESETS', 'SpikeCounter', 'SpikeDriven', 'SpikeDrivenReport',
    'SpikeSources', 'attention_flops', 'fold_bn', 'fold_into', 'layer_flops',
    'merge_stacked', 'weight_layers'
]
