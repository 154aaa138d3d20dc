# E-SpikeFormer S (5.1M), trained from scratch on ImageNet-1k with the
# paper's recipe: LAMB, base lr 6e-4 per 256 images (4.8e-3 at 8 x 256),
# 5 warm-up epochs then cosine to 1e-6 over 200 epochs, RandAugment m9,
# label smoothing 0.1, random erasing 0.25, drop-path 0.1, 224 px, 1 x 4.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    '../_base_/mmpretrain_runtime.py',
    '../_base_/schedules/resumable_epochs.py',
    '../_base_/schedules/warmup_cosine.py',
]

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='sdt3_mm.ESpikeFormer', arch='s', D=4, drop_path_rate=0.1),
    head=dict(
        type='sdt3_mm.SpikeClsHead',
        num_classes=1000,
        in_channels=192,
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        topk=(1, 5)))

train_dataloader = dict(batch_size=256)
val_dataloader = dict(batch_size=256)
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(type='Lamb', lr=6e-4 * 2048 / 256, weight_decay=0.05),
    # As in the reference (timm), no weight decay on norms and biases.
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))

param_scheduler = [
    dict(**_base_.linear_warmup, start_factor=1e-6 / 4.8e-3, end=5),
    dict(**_base_.cosine_decay, eta_min=1e-6, begin=5, end=200),
]

train_cfg = dict(max_epochs=200)

# The lr above is for 8 GPUs x 256 images; --auto-scale-lr rescales it.
auto_scale_lr = dict(base_batch_size=2048)
