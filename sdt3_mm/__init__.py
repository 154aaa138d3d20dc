"""sdt3_mm: Spike-driven Transformer V3 (E-SpikeFormer) for OpenMMLab.

Importing the package changes nothing global: the weights-only loading of
runner checkpoints is switched on explicitly, by
``sdt3_mm.utils.safe_checkpoint_loading()`` or, in a config, by
``custom_hooks = [dict(type='sdt3_mm.SafeCheckpointLoadingHook')]``.
"""
from .version import __version__

__all__ = ['__version__']
