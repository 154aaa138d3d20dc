# E-SpikeFormer 83M fine-tuned on ImageNet-1k from its spike-masked
# autoencoder pretraining (configs/spike_mae). From the paper: layer scale,
# drop-path 0.1, layer-wise lr decay 0.75, 1 x 4. The optimiser, schedule
# and Mixup/CutMix follow the MAE fine-tuning recipe the paper builds on
# (AdamW, base lr 5e-4 per 256 images, 5 warm-up epochs, 100 epochs).
# Published ImageNet-1k top-1: 84.0.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    '../_base_/mmpretrain_runtime.py',
    '../_base_/schedules/resumable_epochs.py',
    '../_base_/schedules/warmup_cosine.py',
]

# From ../spike_mae/spike-mae_e-spikeformer-83m_8xb256-200e_in1k.py
pretrained = ('work_dirs/spike-mae_e-spikeformer-83m_8xb256-200e_in1k/'
              'epoch_200.pth')
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='sdt3_mm.ESpikeFormer',
        arch='83m',
        D=4,
        drop_path_rate=0.1,
        layer_scale_init_value=1e-6,
        # The pretraining run's last checkpoint; point it at yours.
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    head=dict(
        type='sdt3_mm.SpikeKDClsHead',
        num_classes=1000,
        in_channels=512,
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        topk=(1, 5)),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0)
    ]))

train_dataloader = dict(batch_size=128)
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(
        type='AdamW',
        lr=5e-4 * 1024 / 256,
        betas=(0.9, 0.999),
        weight_decay=0.05),
    constructor='LearningRateDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=0.75,
        custom_keys={'.layer_scale': dict(decay_mult=0.0)}))

param_scheduler = [
    dict(**_base_.linear_warmup, start_factor=1e-4, end=5),
    dict(**_base_.cosine_decay, eta_min=1e-6, begin=5, end=100),
]

train_cfg = dict(max_epochs=100)

auto_scale_lr = dict(base_batch_size=1024)
