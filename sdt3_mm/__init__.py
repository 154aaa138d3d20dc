"""sdt3_mm: Spike-driven Transformer V3 (E-SpikeFormer) for OpenMMLab.

Importing the package changes nothing global: the weights-only loading of
runner checkpoints is switched on explicitly, by
``sdt3_mm.reliability.safe_checkpoint_loading()`` or, in a config, by
``custom_hooks = [dict(type='sdt3_mm.SafeCheckpointLoadingHook')]``.
The one thing it adds: our classifiers' names in MMPretrain's model hub
(``sdt3_mm.model_zoo.register_model_zoo``).
"""
from .model_zoo import register_model_zoo
from .version import __version__

register_model_zoo()

__all__ = ['__version__']
