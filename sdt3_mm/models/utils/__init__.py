from .lif_neuron import MultiStepLIFNeuron
from .official_checkpoint import (convert_official_state_dict,
                                  is_official_state_dict)
from .pretrained import load_pretrained_backbone, read_state_dict
from .sfa_neuron import SFANeuron

__all__ = [
    'MultiStepLIFNeuron', 'SFANeuron', 'convert_official_state_dict',
    'is_official_state_dict', 'load_pretrained_backbone', 'read_state_dict'
]
