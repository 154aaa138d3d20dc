"""Test helper: the training process dies in the middle of a checkpoint
write, as if it were killed there."""
import os
import signal

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


class _KillWhenPickled:
    """Sends SIGKILL to its own process when ``torch.save`` pickles it."""

    def __reduce__(self):
        os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module()
class KillDuringCheckpointHook(Hook):
    """Kill the process while the periodic checkpoint of ``epoch`` is being
    serialized: after the checkpoint hook has begun the save, before the
    new file is complete."""

    def __init__(self, epoch):
        self.epoch = epoch

    def before_save_checkpoint(self, runner, checkpoint):
        if checkpoint['meta']['epoch'] == self.epoch:
            checkpoint['kill_during_write'] = _KillWhenPickled()
