from .atomic_checkpoint_hook import AtomicCheckpointHook
from .firing_rate_hook import FiringRateHook
from .non_finite_check_hook import NonFiniteCheckHook
from .safe_checkpoint_hook import SafeCheckpointLoadingHook
from .strict_loading_hook import StrictLoadingHook

__all__ = [
    'AtomicCheckpointHook', 'FiringRateHook', 'NonFiniteCheckHook',
    'SafeCheckpointLoadingHook', 'StrictLoadingHook'
]
