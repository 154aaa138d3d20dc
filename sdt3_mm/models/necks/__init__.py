from .spike_fpn import SpikeFPN

__all__ = ['SpikeFPN']
