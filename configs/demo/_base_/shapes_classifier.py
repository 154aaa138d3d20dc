# What the demo classifiers on the embedded shapes sets share (six classes,
# 1200 training and 300 held-out samples, 2 CPU cores): E-SpikeFormer T
# (D = 4, residual branches starting at zero: from scratch on 1200 samples
# the reference's default start barely moves in the time we have) with a
# spiking head, one loader worker, AdamW with cosine decay, the firing-rate
# hook and seed 0. A config gives its data (`data_root`, the datasets' type
# and pipelines, with `test_dataloader = val_dataloader` again), its length
# (`train_cfg = dict(max_epochs=N, val_interval=K)`), its schedule (the values
# of ../../_base_/schedules/warmup_cosine.py) and its checkpoint interval.
_base_ = [
    '../../_base_/mmpretrain_runtime.py',
    '../../_base_/schedules/resumable_epochs.py',
    '../../_base_/schedules/warmup_cosine.py'
]

num_classes = 6

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='sdt3_mm.ESpikeFormer', arch='t', D=4, zero_init_residual=True),
    head=dict(
        type='sdt3_mm.SpikeClsHead',
        num_classes=num_classes,
        in_channels=128,
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        topk=(1, )))

train_dataloader = dict(
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(split='train'))
val_dataloader = dict(
    batch_size=50,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(split='val'))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=3e-3, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='sdt3_mm.AtomicCheckpointHook', max_keep_ckpts=2))
# Mean firing rate and energy per sample, logged with the metric at each
# evaluation; per-layer tables in <work_dir>/firing_rates/.
custom_hooks = [
    dict(type='sdt3_mm.FiringRateHook'),
    *_base_.custom_hooks
]
randomness = dict(seed=0)
