"""Deployment analysis: spike-driven execution, BN folding, spike counts,
energy, and the input checks of the analysis tools."""
from .bn_folding import fold_bn, fold_into
from .energy import ENERGY_PRESETS, SpikeCounter, layer_flops
from .input_checks import check_finite
from .spike_driven import (SpikeDriven, SpikeDrivenError, SpikeDrivenReport,
                           check_binary_maps)
from .spike_inputs import SpikeInputs, SpikeSources, weight_layers

__all__ = [
    'ENERGY_PRESETS', 'SpikeCounter', 'SpikeDriven', 'SpikeDrivenError',
    'SpikeDrivenReport', 'SpikeInputs', 'SpikeSources', 'check_binary_maps',
    'check_finite', 'fold_bn', 'fold_into', 'layer_flops', 'weight_layers'
]
