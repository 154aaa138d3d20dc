# Semantic FPN with E-SpikeFormer T, a spiking FPN and a spiking decode head
# (D = 4 throughout, as the reference segmentation model) on the embedded
# shapes set: scenes of one to six textured shapes, 128 x 128, labelled per
# pixel with the background and six shape classes, in ADE20K layout. The set
# writes itself into data/shapes_seg on first use; evaluation is
# MMSegmentation's IoUMetric (mIoU over the seven classes). Runs on 2 CPU
# cores with tools/train.py.
_base_ = ['../_base_/mmseg_runtime.py']

data_root = 'data/shapes_seg'
num_classes = 7
channels = 64
neuron = dict(type='SFANeuron', D=4)

data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[127.5, 127.5, 127.5],
    std=[64.0, 64.0, 64.0],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(128, 128))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='sdt3_mm.ESpikeFormer',
        arch='t',
        # Strides 2, 4, 8 and 16, as the reference segmentation model.
        out_indices=(0, 1, 2, 4),
        # From scratch on a small set: residual branches start at zero.
        zero_init_residual=True),
    neck=dict(
        type='sdt3_mm.SpikeFPN',
        in_channels=[12, 24, 48, 128],
        out_channels=channels,
        num_outs=4,
        neuron_cfg=neuron),
    decode_head=dict(
        type='sdt3_mm.SpikeFPNHead',
        in_channels=[channels] * 4,
        in_index=[0, 1, 2, 3],
        feature_strides=[2, 4, 8, 16],
        channels=channels,
        dropout_ratio=0.1,
        num_classes=num_classes,
        neuron_cfg=neuron,
        align_corners=False,
        # The background covers most pixels; weighted down, it leaves the
        # shapes a fair share of the gradient.
        loss_decode=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=1.0,
            class_weight=[0.2] + [1.0] * 6)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

# A label outside 0..num_classes - 1 (and the ignore index 255) is refused
# with its file named, rather than failing in the loss or, in validation,
# being left out of the metric.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='sdt3_mm.CheckSegLabelRange', num_classes=num_classes),
    dict(type='RandomFlip', prob=0.5, direction=['horizontal', 'vertical']),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='sdt3_mm.CheckSegLabelRange', num_classes=num_classes),
    dict(type='PackSegInputs'),
]
dataset = dict(
    type='sdt3_mm.ShapesSegmentation', data_root=data_root, max_objects=6)
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(**dataset, split='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=10,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**dataset, split='val', pipeline=test_pipeline))
test_dataloader = val_dataloader
# Test-time augmentation (test.py --tta, with mmseg's SegTTAModel from its
# default_runtime): the scene as it is and flipped either way, averaged; no
# multi-scale resizing, the shapes being drawn for 128 x 128. The flips come
# before the labels load: the model flips its logits back.
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[[
            dict(type='RandomFlip', prob=0., direction='horizontal'),
            dict(type='RandomFlip', prob=1., direction='horizontal'),
            dict(type='RandomFlip', prob=1., direction='vertical')
        ], [
            dict(type='LoadAnnotations')
        ], [dict(type='sdt3_mm.CheckSegLabelRange', num_classes=num_classes)],
                    [dict(type='PackSegInputs')]])
]
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

max_iters = 800
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=200)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# The paper's recipe, shortened: AdamW lr 1e-3, weight decay 0.005, the
# decode head at twice the learning rate, linear warm-up, then poly decay.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.005),
    paramwise_cfg=dict(
        norm_decay_mult=0.0, custom_keys={'decode_head': dict(lr_mult=2.)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        by_epoch=False,
        begin=50,
        end=max_iters),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    checkpoint=dict(
        type='sdt3_mm.AtomicCheckpointHook',
        by_epoch=False,
        interval=200,
        max_keep_ckpts=2),
    # Off unless a test tool turns it on (test.py --show / --show-dir) with
    # the SegLocalVisualizer of mmseg's default_runtime. Then every test
    # batch is painted: mmseg's default interval of 50 batches would paint
    # none of the ten batches of the test set (the first painted batch is
    # the 50th), with our test.py and with MMSegmentation's own.
    visualization=dict(type='SegVisualizationHook', interval=1))
# Mean firing rate and energy per image, logged with the metric at each
# evaluation; per-layer tables in <work_dir>/firing_rates/.
custom_hooks = [
    dict(type='sdt3_mm.FiringRateHook'),
    *_base_.custom_hooks
]
randomness = dict(seed=0)
