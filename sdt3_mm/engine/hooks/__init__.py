from .firing_rate_hook import FiringRateHook
from .safe_checkpoint_hook import SafeCheckpointLoadingHook

__all__ = ['FiringRateHook']
__all__ += ['SafeCheckpointLoadingHook']
