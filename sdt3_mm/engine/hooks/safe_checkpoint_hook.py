"""Weights-only loading of checkpoints for the length of a run."""
from mmengine.hooks import Hook

from sdt3_mm.registry import HOOKS
from sdt3_mm.utils.checkpoint_loading import (enable_safe_checkpoint_loading,
                                              restore_checkpoint_loader)


@HOOKS.register_module()
class SafeCheckpointLoadingHook(Hook):
    """Load checkpoints of every source through
    :func:`~sdt3_mm.utils.safe_torch_load` while the runner runs.

    torch 2.13 loads with ``weights_only=True`` by default, which rejects
    the checkpoints mmengine's runner writes (``--resume``, ``load_from``
    of a runner checkpoint, ``test.py``), while mmengine loads URLs
    through torch hub with ``weights_only=False``, running any code in the
    file. In ``before_run`` this hook puts sdt3_mm's weights-only loaders
    in place of mmengine's for every scheme of ``CheckpointLoader`` (local
    paths, ``http(s)://``, ``open-mmlab://``, ``torchvision://``,
    ``s3://``...), and in ``after_run`` it puts back the loaders it found.
    mmengine's ``Runner`` calls ``before_run`` before it initialises the
    weights (``Pretrained`` init) and before ``load_or_resume`` in
    ``train()``, ``val()`` and ``test()`` alike, so every checkpoint the
    runner reads goes through it.
    Use it in any config as::

        custom_hooks = [dict(type='sdt3_mm.SafeCheckpointLoadingHook')]

    If the run fails, ``after_run`` is not called and sdt3_mm's loaders
    stay in place until the process ends.

    Raises:
        RuntimeError: In ``before_run``, if another plugin's loader is
            registered for any scheme (see
            :func:`~sdt3_mm.utils.enable_safe_checkpoint_loading`).
    """

    # First in before_run, so that hooks after it may load checkpoints too.
    priority = 'HIGHEST'

    def __init__(self):
        self._previous = []

    def before_run(self, runner):
        self._previous.append(enable_safe_checkpoint_loading())

    def after_run(self, runner):
        if self._previous:
            restore_checkpoint_loader(self._previous.pop())
