# Mask R-CNN 1x on COCO with E-SpikeFormer L (19M), a spiking FPN and
# spiking RPN, box and mask heads: binary spikes (D = 1) in front of every
# conv and FC after the backbone, as the reference detector. Recipe from the
# paper: AdamW lr 2e-4, weight decay 0.05 (none on norms), 1000-iteration
# linear warm-up, steps at epochs 8 and 11, DETR-style multi-scale crop
# augmentation, 4 images per GPU on 8 GPUs.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    '../_base_/datasets/coco_instance_detr-aug.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    '../_base_/mmdet_runtime.py'
]

neuron = dict(type='SFANeuron', D=1)
model = dict(
    backbone=dict(
        _delete_=True,
        type='sdt3_mm.ESpikeFormer',
        arch='l',
        out_indices=(1, 2, 3, 4),
        # The ImageNet checkpoint, converted with
        # tools/model_converters/sdt3_official_to_mm.py (an official one
        # loads directly too).
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/e-spikeformer-l_in1k.pth')),
    neck=dict(
        _delete_=True,
        type='sdt3_mm.SpikeFPN',
        in_channels=[64, 128, 256, 360],
        # Taps 3 and 4 are both at stride 16 (the reference treats the last
        # as stride 32); SpikeFPN's lateral conv takes it to stride 32, so
        # the levels are at 4, 8, 16, 32 (64 pooled) as the RPN anchors and
        # RoI extractors below assume.
        in_strides=[4, 8, 16, 16],
        out_channels=256,
        num_outs=5,
        neuron_cfg=neuron),
    rpn_head=dict(type='sdt3_mm.SpikeRPNHead', neuron_cfg=neuron),
    roi_head=dict(
        bbox_head=dict(
            type='sdt3_mm.SpikeShared2FCBBoxHead', neuron_cfg=neuron),
        mask_head=dict(type='sdt3_mm.SpikeFCNMaskHead', neuron_cfg=neuron)))

optim_wrapper = dict(
    optimizer=dict(
        _delete_=True,
        type='AdamW',
        lr=2e-4,
        betas=(0.9, 0.999),
        weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=1000),
    dict(
        type='MultiStepLR',
        begin=0,
        end=12,
        by_epoch=True,
        milestones=[8, 11],
        gamma=0.1)
]
# 8 GPUs x 4 images.
auto_scale_lr = dict(base_batch_size=32)
# Resumes exactly from iteration checkpoints inside an epoch, too.
train_cfg = dict(type='sdt3_mm.ResumableEpochBasedTrainLoop')
