"""Loading mmengine runner checkpoints under ``torch.load(weights_only=True)``.

torch >= 2.6 loads with ``weights_only=True`` by default, which rejects the
checkpoints mmengine's runner writes: their ``message_hub`` pickles
``HistoryBuffer`` objects holding numpy arrays. Rather than turning the
restriction off, we keep ``weights_only=True`` and, only for a file that
needs it, allow exactly the classes such a runner checkpoint is made of.
A plain state dict is loaded with nothing allowed beyond torch's defaults,
and a file that needs anything else is refused with the names it needs.

Importing sdt3_mm changes none of mmengine's loaders. mmengine's runner
loads through ``CheckpointLoader``, whose loader of local paths (the ``''``
scheme) calls ``torch.load`` without ``weights_only``; to have it use
:func:`safe_torch_load` instead, switch it on where it is needed, with
:func:`safe_checkpoint_loading` (a context manager) or, in a config,
``custom_hooks = [dict(type='sdt3_mm.SafeCheckpointLoadingHook')]``.
Both put back the loader they found.
"""
import contextlib
import importlib
import os.path as osp
import pickle

import torch
from mmengine.runner.checkpoint import CheckpointLoader

# Globals a runner checkpoint may reference: mmengine's log buffers and the
# pieces numpy uses to pickle arrays, scalars and dtypes (numpy 1 and 2).
_RUNNER_GLOBALS = (
    'mmengine.logging.history_buffer.HistoryBuffer',
    'numpy.core.multiarray._reconstruct',
    'numpy._core.multiarray._reconstruct',
    'numpy.core.multiarray.scalar',
    'numpy._core.multiarray.scalar',
    'numpy.ndarray',
    'numpy.dtype',
)
# numpy >= 1.25 pickles dtypes through their classes (Float64DType, ...).
_RUNNER_GLOBAL_PREFIXES = ('numpy.dtypes.', )


def _history_buffer_method(owner, name):
    """The one ``getattr`` a runner checkpoint needs.

    ``HistoryBuffer`` pickles its statistics methods (``min``, ``mean``,
    ...) as ``getattr(HistoryBuffer, name)``. A plain ``getattr`` would
    reach anything from any allowed object, so the unpickler is given this
    stand-in, which returns those methods and nothing else.
    """
    from mmengine.logging import HistoryBuffer
    methods = {'min', 'max', 'current', 'mean'}
    if owner is HistoryBuffer and name in methods.union(
            HistoryBuffer._statistics_methods):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'refusing getattr({owner!r}, {name!r}) while loading a runner '
        f'checkpoint')


def _numpy_dtype_classes():
    """numpy's dtype classes: unpickled dtypes are their instances, which
    the weights-only unpickler builds only for allowed types."""
    import numpy as np
    dtypes = getattr(np, 'dtypes', None)
    return [getattr(dtypes, n) for n in getattr(dtypes, '__all__', [])]


def _runner_global(name):
    """The object to give the unpickler for ``name``, or None."""
    if name == 'builtins.getattr':
        return _history_buffer_method
    if name in _RUNNER_GLOBALS or name.startswith(_RUNNER_GLOBAL_PREFIXES):
        module, _, attr = name.rpartition('.')
        return getattr(importlib.import_module(module), attr)
    return None


def safe_torch_load(filename, map_location=None):
    """``torch.load`` a file with ``weights_only=True``.

    Plain state dicts load as they are. A file rejected by the weights-only
    unpickler is loaded again with mmengine's runner-checkpoint classes
    allowed, if those are all it needs.

    Args:
        filename (str): Path of the file.
        map_location (str | torch.device | Callable, optional): As in
            ``torch.load``.

    Returns:
        object: The loaded checkpoint.

    Raises:
        pickle.UnpicklingError: If the file needs other classes; the
            message names them.
    """
    try:
        return torch.load(
            filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        needed = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
        allowed = {name: _runner_global(name) for name in needed}
        others = [name for name, obj in allowed.items() if obj is None]
        if others or not needed:
            raise pickle.UnpicklingError(
                f'{filename} is neither a plain state dict nor an mmengine '
                f'runner checkpoint: it needs {others or needed}, which '
                f'sdt3_mm does not unpickle. If you trust the file, load it '
                f'with torch.load(..., weights_only=False) and save its '
                f'state dict.') from None
    with torch.serialization.safe_globals([(obj, name)
                                           for name, obj in allowed.items()] +
                                          _numpy_dtype_classes()):
        return torch.load(
            filename, map_location=map_location, weights_only=True)


def load_from_local_safely(filename, map_location):
    """mmengine's loader of local paths, with :func:`safe_torch_load`."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} does not exist')
    return safe_torch_load(filename, map_location=map_location)


def _mmengine_local_loader():
    """mmengine's own loader of local paths."""
    from mmengine.runner import checkpoint
    return checkpoint.load_from_local


def _describe_loader(loader):
    if loader is None:
        return 'no loader'
    name = getattr(loader, '__qualname__', None) or type(loader).__name__
    return f'{getattr(loader, "__module__", "?")}.{name}'


def _set_local_loader(loader):
    if loader is None:
        CheckpointLoader._schemes.pop('', None)
    else:
        CheckpointLoader.register_scheme(
            prefixes='', loader=loader, force=True)


def enable_safe_checkpoint_loading():
    """Make mmengine load local checkpoints through :func:`safe_torch_load`.

    It replaces mmengine's loader of local paths (the ``''`` scheme of
    ``CheckpointLoader``), which ``Runner.load_checkpoint`` (``load_from``,
    ``--resume``), ``test.py`` and ``Pretrained`` init all go through,
    until :func:`restore_checkpoint_loader` is given the loader this
    returns. Prefer :func:`safe_checkpoint_loading` or
    :class:`~sdt3_mm.engine.SafeCheckpointLoadingHook`, which restore it.

    Returns:
        callable: The loader that was in place (mmengine's own or, when
        already switched on, ours).

    Raises:
        RuntimeError: If another loader (another plugin's) is in place;
            it is left as it is.
    """
    current = CheckpointLoader._schemes.get('')
    if current not in (_mmengine_local_loader(), load_from_local_safely):
        raise RuntimeError(
            f"the loader of local checkpoints in mmengine's "
            f"CheckpointLoader (scheme '') is {_describe_loader(current)}, "
            f"neither mmengine's own nor sdt3_mm's (another plugin replaced "
            f'it?); sdt3_mm will not override it with its weights-only '
            f'loader. Remove the other loader, or drop '
            f'sdt3_mm.SafeCheckpointLoadingHook / safe_checkpoint_loading() '
            f'and load runner checkpoints through that loader.')
    _set_local_loader(load_from_local_safely)
    return current


def restore_checkpoint_loader(previous):
    """Put back the loader of local paths that
    :func:`enable_safe_checkpoint_loading` returned."""
    _set_local_loader(previous)


@contextlib.contextmanager
def safe_checkpoint_loading():
    """Within the block, mmengine loads local checkpoints (runner
    checkpoints included) through :func:`safe_torch_load`; on leaving it,
    the loader that was in place before is restored. Blocks may nest.

    Example::

        with safe_checkpoint_loading():
            runner.train()  # load_from / resume of runner checkpoints

    Raises:
        RuntimeError: If another plugin's loader is in place (see
            :func:`enable_safe_checkpoint_loading`).
    """
    previous = enable_safe_checkpoint_loading()
    try:
        yield
    finally:
        restore_checkpoint_loader(previous)
