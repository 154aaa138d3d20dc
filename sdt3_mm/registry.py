"""Registries of the ``sdt3_mm`` scope.

Each registry is a child of mmengine's root registry, so a config of any
OpenMMLab library can name our modules as ``type='sdt3_mm.ESpikeFormer'``
under its own ``default_scope``: mmengine imports this module on the first
lookup of the ``sdt3_mm`` scope, and the registry imports its ``locations``.
"""
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import DefaultScope, Registry

MODELS = Registry(
    'model',
    parent=MMENGINE_MODELS,
    scope='sdt3_mm',
    locations=['sdt3_mm.models'])
DATASETS = Registry(
    'dataset',
    parent=MMENGINE_DATASETS,
    scope='sdt3_mm',
    locations=['sdt3_mm.datasets'])
HOOKS = Registry(
    'hook',
    parent=MMENGINE_HOOKS,
    scope='sdt3_mm',
    locations=['sdt3_mm.engine', 'sdt3_mm.reliability'])
LOOPS = Registry(
    'loop',
    parent=MMENGINE_LOOPS,
    scope='sdt3_mm',
    locations=['sdt3_mm.reliability'])
OPTIM_WRAPPERS = Registry(
    'optim_wrapper',
    parent=MMENGINE_OPTIM_WRAPPERS,
    scope='sdt3_mm',
    locations=['sdt3_mm.engine'])
TRANSFORMS = Registry(
    'transform',
    parent=MMENGINE_TRANSFORMS,
    scope='sdt3_mm',
    locations=['sdt3_mm.datasets'])


def build_in_scope(registry, cfg, **kwargs):
    """Build ``cfg`` from ``registry`` with ``sdt3_mm`` as default scope.

    Modules we build internally (a neuron inside a block, say) are named
    by bare types in our configs. Under a caller's default scope such as
    ``mmdet``, mmengine would look a bare type up in that library's
    registry, where it does not exist; pinning the scope avoids that.

    Args:
        registry (Registry): Registry of the ``sdt3_mm`` scope.
        cfg (dict): Config with a ``type`` key.
        **kwargs: Extra arguments for the built object.

    Returns:
        object: The built object.
    """
    with DefaultScope.overwrite_default_scope('sdt3_mm'):
        return registry.build(cfg, default_args=kwargs or None)
