# Spike-masked autoencoder pretraining of E-SpikeFormer 83M on ImageNet-1k
# (Spike-driven Transformer V3): half of the 16 x 16 patches masked, the
# encoder run sparsely (masked patches zero after every conv and BN, BN
# statistics over visible positions), a light ViT decoder (256 wide, 4
# layers, 4 heads, fixed 2-D sin-cos positions, learned mask token), MSE on
# per-patch-normalised pixels of the masked patches. AdamW (0.9, 0.95),
# wd 0.05, base lr 1.5e-4 per 256 images, 20 warm-up epochs then cosine,
# 200 epochs, RandomResizedCrop 224 with scale 0.2-1. Fine-tune with
# ../e_spikeformer/e-spikeformer-83m_spike-mae-pre_8xb128-coslr-100e_in1k.py.
# The model: ../_base_/models/spike-mae_e-spikeformer-83m.py.
_base_ = [
    '../_base_/models/spike-mae_e-spikeformer-83m.py',
    'mmpretrain::_base_/datasets/imagenet_bs512_mae.py',
    '../_base_/mmpretrain_runtime.py',
    '../_base_/schedules/warmup_cosine.py',
]

train_dataloader = dict(batch_size=256)

# fp32: the SFA neuron rounds membrane potentials, and fp16 would move
# them across rounding boundaries (--amp turns mixed precision on).
optim_wrapper = dict(
    optimizer=dict(
        type='AdamW',
        lr=1.5e-4 * 2048 / 256,
        betas=(0.9, 0.95),
        weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys=dict(mask_token=dict(decay_mult=0.))))

param_scheduler = [
    dict(**_base_.linear_warmup, start_factor=1e-4, end=20),
    dict(**_base_.cosine_decay, T_max=180, begin=20, end=200),
]

# Resumes exactly from iteration checkpoints inside an epoch, too.
train_cfg = dict(type='sdt3_mm.ResumableEpochBasedTrainLoop', max_epochs=200)
default_hooks = dict(
    checkpoint=dict(
        type='sdt3_mm.AtomicCheckpointHook', interval=1, max_keep_ckpts=3))
randomness = dict(seed=0, diff_rank_seed=True)
# The lr above is for 8 GPUs x 256 images; --auto-scale-lr rescales it.
auto_scale_lr = dict(base_batch_size=2048)
