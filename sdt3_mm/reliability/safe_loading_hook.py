"""Weights-only loading of checkpoints for the length of a run's loading."""
from mmengine.hooks import Hook

from sdt3_mm.registry import HOOKS
from .safe_loading import (enable_safe_checkpoint_loading,
                           restore_checkpoint_loader)


@HOOKS.register_module()
class SafeCheckpointLoadingHook(Hook):
    """Load checkpoints of every source through
    :func:`~.safe_loading.safe_torch_load` while the runner loads them.

    torch 2.13 loads with ``weights_only=True`` by default, which rejects
    the checkpoints mmengine's runner writes (``--resume``, ``load_from``
    of a runner checkpoint, ``test.py``), while mmengine loads URLs
    through torch hub with ``weights_only=False``, running any code in the
    file. In ``before_run`` this hook puts sdt3_mm's weights-only loaders
    in place of mmengine's for every scheme of ``CheckpointLoader`` (local
    paths, ``http(s)://``, ``open-mmlab://``, ``torchvision://``,
    ``s3://``...). mmengine's ``Runner`` calls ``before_run`` before it
    initialises the weights (``Pretrained`` init) and before
    ``load_or_resume`` in ``train()``, ``val()`` and ``test()`` alike, so
    every checkpoint the runner reads goes through them.
    Use it in any config as::

        custom_hooks = [dict(type='sdt3_mm.SafeCheckpointLoadingHook')]

    When the loaders it found are put back: mmengine 0.10.7 calls no hook
    when a run raises (there is no ``on_exception``; ``after_run`` is
    reached only by a run that ends well), so the hook does not wait for
    ``after_run``. It puts them back as soon as the runner has loaded:
    after the runner's checkpoint is read (``after_load_checkpoint``,
    before it is compared with the model or copied into it), and in
    ``before_train``, ``before_val`` and ``before_test`` (the loop starts:
    everything is loaded, with or without a checkpoint), and in
    ``after_run``. A run that fails later (a train step raising, a data
    error) leaves mmengine's loaders as they were. Only a failure inside
    the loading itself (a refused or damaged checkpoint, a ``Pretrained``
    init that raises) leaves sdt3_mm's (weights-only) loaders in place;
    ``tools/train.py`` and ``tools/test.py`` run the runner inside
    :func:`~.safe_loading.safe_checkpoint_loading`, which restores them
    however the block ends: do the same for such a run in code.

    Raises:
        RuntimeError: In ``before_run``, if another plugin's loader is
            registered for any scheme (see
            :func:`~.safe_loading.enable_safe_checkpoint_loading`).
    """

    # First in before_run, so that hooks after it may load checkpoints too,
    # and first in after_load_checkpoint, before a hook that may raise.
    priority = 'HIGHEST'

    def __init__(self):
        self._previous = []

    def before_run(self, runner):
        self._previous.append(enable_safe_checkpoint_loading())

    def _restore(self):
        """Put back what ``before_run`` found, once per ``before_run``."""
        if self._previous:
            restore_checkpoint_loader(self._previous.pop())

    def after_load_checkpoint(self, runner, checkpoint):
        self._restore()

    def before_train(self, runner):
        self._restore()

    def before_val(self, runner):
        self._restore()

    def before_test(self, runner):
        self._restore()

    def after_run(self, runner):
        self._restore()
