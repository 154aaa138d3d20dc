from .spike_fpn_head import SpikeFPNHead

__all__ = ['SpikeFPNHead']
