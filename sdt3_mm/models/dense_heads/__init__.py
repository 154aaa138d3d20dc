from .spike_rpn_head import SpikeRPNHead

__all__ = ['SpikeRPNHead']
