# UPerNet on ADE20K: MMSegmentation's own config, UPerHead and auxiliary
# FCN head, with only the backbone swapped for E-SpikeFormer S (taps at
# strides 4, 8, 16 and 16; UPerHead resizes every level to the finest).
_base_ = [
    'mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py',
    '../_base_/reliability.py'
]

model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='sdt3_mm.ESpikeFormer',
        arch='s',
        out_indices=(1, 2, 3, 4),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/e-spikeformer-s_in1k.pth')),
    decode_head=dict(in_channels=[32, 64, 128, 192]),
    auxiliary_head=dict(in_channels=128))

# MMSegmentation's ADE20K pipelines, with a label outside the 150 classes
# (the heads' num_classes; 255 after reduce_zero_label is ignored) refused
# with its file named, rather than failing in the loss or, in validation,
# being left out of the metric.
crop_size = (512, 512)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='sdt3_mm.CheckSegLabelRange', num_classes=150),
    dict(
        type='RandomResize',
        scale=(2048, 512),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='sdt3_mm.CheckSegLabelRange', num_classes=150),
    dict(type='PackSegInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# MMSegmentation's ADE20K test-time augmentation (tools/test.py --tta):
# six scales, each unflipped and flipped, with the same label check.
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(type='Resize', scale_factor=r, keep_ratio=True)
                for r in img_ratios
            ],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal')
            ], [dict(type='LoadAnnotations')],
            [dict(type='sdt3_mm.CheckSegLabelRange', num_classes=150)],
            [dict(type='PackSegInputs')]
        ])
]

# AdamW, as for other transformer backbones in MMSegmentation.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0.0))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        by_epoch=False,
        begin=1500,
        end=160000),
]
# Checkpoints are written atomically: a kill never loses the last one.
default_hooks = dict(checkpoint=dict(type='sdt3_mm.AtomicCheckpointHook'))
