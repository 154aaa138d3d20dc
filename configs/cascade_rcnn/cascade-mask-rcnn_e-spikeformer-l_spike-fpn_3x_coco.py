# Cascade Mask R-CNN 3x on COCO with E-SpikeFormer L (19M), a spiking FPN and
# spiking heads (D = 1), GIoU box loss on decoded boxes in all three stages.
# The Mask R-CNN recipe (AdamW 2e-4, weight decay 0.05, DETR-style
# augmentation) over 36 epochs with steps at 27 and 33.
_base_ = [
    'mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py',
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
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/e-spikeformer-l_in1k.pth')),
    neck=dict(
        _delete_=True,
        type='sdt3_mm.SpikeFPN',
        in_channels=[64, 128, 256, 360],
        # See the Mask R-CNN config: tap 4 is brought to stride 32.
        in_strides=[4, 8, 16, 16],
        out_channels=256,
        num_outs=5,
        neuron_cfg=neuron),
    rpn_head=dict(type='sdt3_mm.SpikeRPNHead', neuron_cfg=neuron),
    roi_head=dict(
        bbox_head=[
            dict(
                type='sdt3_mm.SpikeShared2FCBBoxHead',
                in_channels=256,
                fc_out_channels=1024,
                roi_feat_size=7,
                num_classes=80,
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder',
                    target_means=[0., 0., 0., 0.],
                    target_stds=stds),
                reg_class_agnostic=True,
                reg_decoded_bbox=True,
                loss_cls=dict(
                    type='CrossEntropyLoss',
                    use_sigmoid=False,
                    loss_weight=1.0),
                loss_bbox=dict(type='GIoULoss', loss_weight=10.0),
                neuron_cfg=neuron)
            for stds in ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1],
                         [0.033, 0.033, 0.067, 0.067])
        ],
        mask_head=dict(type='sdt3_mm.SpikeFCNMaskHead', neuron_cfg=neuron)))

max_epochs = 36
# Resumes exactly from iteration checkpoints inside an epoch, too.
train_cfg = dict(
    type='sdt3_mm.ResumableEpochBasedTrainLoop', max_epochs=max_epochs)
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
        end=max_epochs,
        by_epoch=True,
        milestones=[27, 33],
        gamma=0.1)
]
auto_scale_lr = dict(base_batch_size=32)
