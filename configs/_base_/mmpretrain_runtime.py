# MMPretrain's default runtime with sdt3_mm's reliability settings.
_base_ = ['mmpretrain::_base_/default_runtime.py', './reliability.py']
# Checkpoints written atomically (a kill never leaves a half-written file).
default_hooks = dict(checkpoint=dict(type='sdt3_mm.AtomicCheckpointHook'))
# MMPretrain's visualizer, given again without the `_scope_` key that mmengine
# adds to the dicts of an `mmpretrain::` base: MMPretrain's
# tools/visualization/browse_dataset.py passes the keys of `visualizer` to
# UniversalVisualizer(...) as they are, and refused `_scope_`. The runner
# finds the type in the default scope, mmpretrain.
visualizer = dict(
    _delete_=True,
    type='UniversalVisualizer',
    vis_backends=[dict(type='LocalVisBackend')])
