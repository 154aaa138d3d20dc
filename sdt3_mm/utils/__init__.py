from .mixed_precision import use_mixed_precision

__all__ = ['use_mixed_precision']
