# What every sdt3_mm config runs with (docs/en/advanced_guides/
# reliability.md): sdt3_mm's modules registered, checkpoints loaded
# weights-only and strictly, and training stopped at the first non-finite
# value. A config that adds hooks of its own keeps these with
# `custom_hooks = [..., *_base_.custom_hooks]`.
custom_imports = dict(imports=['sdt3_mm'], allow_failed_imports=False)
custom_hooks = [
    dict(type='sdt3_mm.SafeCheckpointLoadingHook'),
    dict(type='sdt3_mm.StrictLoadingHook'),
    dict(type='sdt3_mm.NonFiniteCheckHook')
]
