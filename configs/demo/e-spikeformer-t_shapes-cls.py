# E-SpikeFormer T on the embedded shapes set (six classes of textured
# shapes, 64 x 64, 1200 training and 300 held-out images). The set writes
# itself into data/shapes_cls on first use. Runs on 2 CPU cores:
#   python tools/train.py configs/demo/e-spikeformer-t_shapes-cls.py
_base_ = [
    '../_base_/mmpretrain_runtime.py',
    '../_base_/schedules/resumable_epochs.py'
]

data_root = 'data/shapes_cls'
num_classes = 6

model = dict(
    type='ImageClassifier',
    # Residual branches start at zero: from scratch on 1200 images the
    # reference's default start barely moves in the time we have.
    backbone=dict(
        type='sdt3_mm.ESpikeFormer', arch='t', D=4, zero_init_residual=True),
    head=dict(
        type='sdt3_mm.SpikeClsHead',
        num_classes=num_classes,
        in_channels=128,
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        topk=(1, )))

data_preprocessor = dict(
    num_classes=num_classes,
    mean=[127.5, 127.5, 127.5],
    std=[64.0, 64.0, 64.0],
    to_rgb=True)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomFlip',
        prob=[0.25, 0.25],
        direction=['horizontal', 'vertical']),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=64,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='sdt3_mm.ShapesClassification',
        data_root=data_root,
        split='train',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=50,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='sdt3_mm.ShapesClassification',
        data_root=data_root,
        split='val',
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=3e-3, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
max_epochs = 20
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.01,
        by_epoch=True,
        begin=0,
        end=2,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-5,
        by_epoch=True,
        begin=2,
        end=max_epochs,
        convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=4)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(
        type='sdt3_mm.AtomicCheckpointHook', interval=4, max_keep_ckpts=2))
# Mean firing rate and energy per image, logged with the metric at each
# evaluation; per-layer tables in <work_dir>/firing_rates/.
custom_hooks = [
    dict(type='sdt3_mm.FiringRateHook'),
    *_base_.custom_hooks
]
randomness = dict(seed=0)
