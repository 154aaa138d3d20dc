from .lif_neuron import MultiStepLIFNeuron
from .sfa_neuron import SFANeuron

__all__ = ['MultiStepLIFNeuron', 'SFANeuron']
