# UPerNet on ADE20K: MMSegmentation's own config, UPerHead and auxiliary
# FCN head, with only the backbone swapped for E-SpikeFormer S (taps at
# strides 4, 8, 16 and 16; UPerHead resizes every level to the finest).
_base_ = 'mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py'

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
# Runner checkpoints (--resume, load_from, test.py) load weights-only.
custom_hooks = [dict(type='sdt3_mm.SafeCheckpointLoadingHook')]
