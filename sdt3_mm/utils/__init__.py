from .checkpoint_loading import register_safe_local_loader, safe_torch_load

__all__ = ['register_safe_local_loader', 'safe_torch_load']
