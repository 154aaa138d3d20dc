"""sdt3_mm: Spike-driven Transformer V3 (E-SpikeFormer) for OpenMMLab."""
from .utils.checkpoint_loading import register_safe_local_loader
from .version import __version__

# Importing the package makes mmengine's runner checkpoints loadable under
# torch's weights-only default (see sdt3_mm.utils.checkpoint_loading).
register_safe_local_loader()

__all__ = ['__version__']
