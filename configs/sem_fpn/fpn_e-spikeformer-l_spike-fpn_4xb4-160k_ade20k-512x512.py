# Semantic FPN on ADE20K with E-SpikeFormer L (19M): taps at strides 2, 4, 8
# and 16, a spiking FPN and a spiking Semantic-FPN head (128 channels, an SFA
# neuron with D = 4 in front of every conv), as the reference segmentation
# model. Recipe from the paper: AdamW lr 1e-3, weight decay 0.005, the head
# at twice the learning rate, 1500-iteration linear warm-up then poly decay
# to 0, 512 x 512 crops, 160k iterations, 16 images per batch (4 GPUs x 4).
_base_ = [
    'mmseg::_base_/models/fpn_r50.py',
    '../_base_/datasets/ade20k_label-check.py', '../_base_/mmseg_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py'
]

crop_size = (512, 512)
neuron = dict(type='SFANeuron', D=4)
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='sdt3_mm.ESpikeFormer',
        arch='l',
        out_indices=(0, 1, 2, 4),
        # As the reference's segmentation backbone: each residual branch of
        # the transformer blocks multiplied by its own per-channel layer
        # scale starting at 1e-6, so stages 3-4 start near the identity.
        layer_scale_init_value=1e-6,
        # The ImageNet checkpoint, converted with
        # tools/model_converters/sdt3_official_to_mm.py; it has no layer
        # scales, which keep their initial value (named in the log).
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/e-spikeformer-l_in1k.pth')),
    neck=dict(
        _delete_=True,
        type='sdt3_mm.SpikeFPN',
        in_channels=[32, 64, 128, 360],
        out_channels=128,
        num_outs=4,
        norm_cfg=norm_cfg,
        neuron_cfg=neuron),
    decode_head=dict(
        type='sdt3_mm.SpikeFPNHead',
        in_channels=[128, 128, 128, 128],
        feature_strides=[2, 4, 8, 16],
        channels=128,
        num_classes=150,
        norm_cfg=norm_cfg,
        neuron_cfg=neuron))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.005),
    paramwise_cfg=dict(
        norm_decay_mult=0.0, custom_keys={'decode_head': dict(lr_mult=2.)}))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=1500),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        by_epoch=False,
        begin=1500,
        end=160000),
]
# 4 GPUs x 4 images.
auto_scale_lr = dict(enable=False, base_batch_size=16)
# Checkpoints are written atomically: a kill never loses the last one.
default_hooks = dict(checkpoint=dict(type='sdt3_mm.AtomicCheckpointHook'))
