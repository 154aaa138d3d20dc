# MMSegmentation's default runtime with sdt3_mm's reliability settings.
# (MMSegmentation's schedules, not its runtime, define `default_hooks`: a
# config sets its checkpoint hook to sdt3_mm.AtomicCheckpointHook itself.)
_base_ = ['mmseg::_base_/default_runtime.py', './reliability.py']
