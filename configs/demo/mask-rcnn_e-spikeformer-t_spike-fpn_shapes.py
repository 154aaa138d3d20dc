# Mask R-CNN with E-SpikeFormer T, a spiking FPN and spiking heads on the
# embedded shapes set (scenes of one to four textured shapes in six classes,
# 128 x 128, boxes and polygon masks, COCO layout). The set writes itself
# into data/shapes_det on first use; evaluation is MMDetection's CocoMetric
# (pycocotools), bbox and segm mAP. Runs on 2 CPU cores (the README's main
# command, bash tools/run_demo.sh, trains it with tools/train.py).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    '../_base_/mmdet_runtime.py',
    '../_base_/schedules/warmup_cosine.py'
]

data_root = 'data/shapes_det/'
num_classes = 6
image_size = 128
channels = 64
# Binary spikes (D = 1) in the neck and heads, as the reference detector.
head_neuron = dict(type='SFANeuron', D=1)

model = dict(
    data_preprocessor=dict(mean=[127.5, 127.5, 127.5], std=[64.0, 64.0, 64.0]),
    backbone=dict(
        _delete_=True,
        type='sdt3_mm.ESpikeFormer',
        arch='t',
        out_indices=(1, 2, 3, 4),
        # From scratch on a small set: residual branches start at zero.
        zero_init_residual=True),
    neck=dict(
        _delete_=True,
        type='sdt3_mm.SpikeFPN',
        in_channels=[24, 48, 96, 128],
        # Taps 3 and 4 are both at stride 16; SpikeFPN brings the last one
        # to stride 32, so the levels match the anchor and RoI strides.
        in_strides=[4, 8, 16, 16],
        out_channels=channels,
        num_outs=5,
        neuron_cfg=head_neuron),
    rpn_head=dict(
        type='sdt3_mm.SpikeRPNHead',
        in_channels=channels,
        feat_channels=channels,
        neuron_cfg=head_neuron),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(
            type='sdt3_mm.SpikeShared2FCBBoxHead',
            in_channels=channels,
            fc_out_channels=256,
            num_classes=num_classes,
            neuron_cfg=head_neuron),
        mask_roi_extractor=dict(out_channels=channels),
        mask_head=dict(
            type='sdt3_mm.SpikeFCNMaskHead',
            num_convs=2,
            in_channels=channels,
            conv_out_channels=channels,
            num_classes=num_classes,
            neuron_cfg=head_neuron)),
    # Fewer proposals and sampled RoIs than on COCO: scenes hold at most
    # four objects, and on a CPU the RoI heads cost more than the backbone.
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(
        rpn=dict(nms_pre=1000, max_per_img=300), rcnn=dict(max_per_img=20)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5, direction=['horizontal', 'vertical']),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
dataset = dict(
    type='sdt3_mm.ShapesDetection', data_root=data_root, image_size=image_size)
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        **dataset,
        split='train',
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=10,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        **dataset, split='val', test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/instances_val.json',
    metric=['bbox', 'segm'])
test_evaluator = val_evaluator

max_epochs = 11
# Resumes exactly from iteration checkpoints inside an epoch, too.
train_cfg = dict(
    type='sdt3_mm.ResumableEpochBasedTrainLoop',
    max_epochs=max_epochs,
    val_interval=4)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    clip_grad=dict(max_norm=10.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(**_base_.cosine_decay, eta_min=1e-5, begin=1, end=max_epochs),
]
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
