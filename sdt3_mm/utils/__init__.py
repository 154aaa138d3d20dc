from .checkpoint_loading import (CheckpointFileError, check_checkpoint_content,
                                 enable_safe_checkpoint_loading,
                                 restore_checkpoint_loader,
                                 safe_checkpoint_loader,
                                 safe_checkpoint_loading, safe_torch_load)
from .mixed_precision import use_mixed_precision

__all__ = [
    'CheckpointFileError', 'check_checkpoint_content',
    'enable_safe_checkpoint_loading', 'restore_checkpoint_loader',
    'safe_checkpoint_loader', 'safe_checkpoint_loading', 'safe_torch_load',
    'use_mixed_precision'
]
