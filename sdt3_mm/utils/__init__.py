from .checkpoint_loading import register_safe_local_loader, safe_torch_load
from .runner_config import (add_common_arguments, load_config,
                            use_mixed_precision)

__all__ = [
    'add_common_arguments', 'load_config', 'register_safe_local_loader',
    'safe_torch_load', 'use_mixed_precision'
]
