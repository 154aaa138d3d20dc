# MMDetection's default runtime with sdt3_mm's reliability settings.
_base_ = ['mmdet::_base_/default_runtime.py', './reliability.py']
# Checkpoints written atomically (a kill never leaves a half-written file).
default_hooks = dict(checkpoint=dict(type='sdt3_mm.AtomicCheckpointHook'))
