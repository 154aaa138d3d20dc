# E-SpikeFormer L (19M) on HARDVS (300 actions), clips of T = 8 event
# images, the recipe of the reference (SDT_V3/DVS/Hardvs: train.sh and
# main_finetune.py of BICLab/Spike-Driven-Transformer-V3): 3 GPUs x 24
# clips, 100 epochs from scratch, AdamW, 10 warm-up epochs then cosine to
# 1e-6 per iteration, fp16, gradient clipping at 1, EMA 0.999, label
# smoothing 0.1. Differences from it: configs/hardvs/README.md.
#   bash tools/dist_train.sh configs/hardvs/e-spikeformer-l_3xb24-100e_hardvs-t8.py 3  # noqa: E501
_base_ = [
    '../_base_/mmpretrain_runtime.py',
    '../_base_/schedules/resumable_epochs.py',
    '../_base_/schedules/warmup_cosine.py'
]

data_root = 'data/hardvs'
num_classes = 300
num_frames = 8

model = dict(
    type='ImageClassifier',
    # The reference's Efficient_Spiking_Transformer_scaling_8_19M: widths
    # 64/128/256/360, 2 input channels, three layer scales per transformer
    # block starting at 1e-6, every neuron round(clamp(x, 0, 4)) with no
    # division (norm 1), rounding half to even, gradient passed on [0, 4].
    backbone=dict(
        type='sdt3_mm.ESpikeFormer',
        arch='l',
        in_channels=2,
        layer_scale_init_value=1e-6,
        neuron_cfg=dict(
            type='SFANeuron',
            D=4,
            norm=1,
            rounding='half_even',
            bounds='closed')),
    # Each frame classified, the logits averaged over the 8 frames; the
    # reference's head keeps PyTorch's default Linear init.
    head=dict(
        type='sdt3_mm.SpikeClsHead',
        num_classes=num_classes,
        in_channels=360,
        neuron_cfg=dict(
            type='SFANeuron',
            D=4,
            norm=1,
            rounding='half_even',
            bounds='closed'),
        init_cfg=None,
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        topk=(1, 5)))

# Binary event channels: no normalisation.
data_preprocessor = dict(
    type='sdt3_mm.FramesDataPreprocessor', num_classes=num_classes)

train_pipeline = [
    dict(type='sdt3_mm.LoadHARDVSClip', num_frames=num_frames),
    dict(type='sdt3_mm.ResizeCenterCropFrames', scale=256, crop_size=224),
    dict(type='sdt3_mm.RandomFlipFrames', prob=0.5),
    dict(type='sdt3_mm.HARDVSDecode'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='sdt3_mm.LoadHARDVSClip', num_frames=num_frames, test_mode=True),
    dict(type='sdt3_mm.ResizeCenterCropFrames', scale=256, crop_size=224),
    dict(type='sdt3_mm.HARDVSDecode'),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=24,  # per GPU, 3 GPUs
    num_workers=8,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='sdt3_mm.HARDVS',
        data_root=data_root,
        split='train',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=24,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='sdt3_mm.HARDVS',
        data_root=data_root,
        split='test',
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator

# lr = blr * effective batch / 256 = 4e-5 * (3 x 24) / 256 = 1.125e-5
optim_wrapper = dict(
    type='AmpOptimWrapper',
    dtype='float16',
    optimizer=dict(type='AdamW', lr=4e-5 * 72 / 256, weight_decay=0.01),
    # The reference decays no 1-D parameter (norms, biases, layer scales).
    paramwise_cfg=dict(
        norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0),
    clip_grad=dict(max_norm=1.0))

max_epochs = 100
warmup_epochs = 10
param_scheduler = [
    # The reference's warm-up rises from 0 (lr * iter / warm-up iters);
    # LinearLR needs a positive start.
    dict(**_base_.linear_warmup, start_factor=1e-3, end=warmup_epochs),
    dict(
        **_base_.cosine_decay,
        eta_min=1e-6,
        T_max=max_epochs - warmup_epochs,
        begin=warmup_epochs,
        end=max_epochs),
]

train_cfg = dict(max_epochs=max_epochs)

# The lr above is for 3 GPUs x 24 clips; --auto-scale-lr rescales it.
auto_scale_lr = dict(base_batch_size=72)

custom_hooks = [
    # EMA of parameters and buffers, decay 0.999 (momentum 1 - 0.999),
    # every iteration; the reference evaluates both models each epoch.
    dict(
        type='EMAHook',
        momentum=0.001,
        update_buffers=True,
        evaluate_on_ema=True,
        evaluate_on_origin=True,
        priority='ABOVE_NORMAL'),
    *_base_.custom_hooks
]
default_hooks = dict(
    checkpoint=dict(
        type='sdt3_mm.AtomicCheckpointHook',
        interval=1,
        max_keep_ckpts=2,
        save_best='auto'))
randomness = dict(seed=42)
