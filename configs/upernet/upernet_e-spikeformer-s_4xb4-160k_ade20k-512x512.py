# UPerNet on ADE20K: MMSegmentation's own recipe (its bases, as its
# upernet_r50_4xb4-160k_ade20k-512x512.py), UPerHead and auxiliary FCN head,
# with only the backbone swapped for E-SpikeFormer S (taps at strides 4, 8,
# 16 and 16; UPerHead resizes every level to the finest) and the label check
# of ../_base_/datasets/ade20k_label-check.py.
_base_ = [
    'mmseg::_base_/models/upernet_r50.py',
    '../_base_/datasets/ade20k_label-check.py', '../_base_/mmseg_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py'
]

crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='sdt3_mm.ESpikeFormer',
        arch='s',
        out_indices=(1, 2, 3, 4),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/e-spikeformer-s_in1k.pth')),
    decode_head=dict(in_channels=[32, 64, 128, 192], num_classes=150),
    auxiliary_head=dict(in_channels=128, num_classes=150))

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
