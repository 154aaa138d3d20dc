# The spike-masked autoencoder on the embedded shapes images (labels
# unused): a small large-family E-SpikeFormer (widths 32/64/128, 2 blocks,
# rep-conv) pretrained for 300 iterations of 32 crops of 64 x 64 (16
# patches, 8 masked), logging the reconstruction loss every 10 iterations.
#   python tools/train.py configs/demo/spike-mae_e-spikeformer-tiny_shapes.py
#   python tools/analysis_tools/spike_mae_reconstruct.py \
#       configs/demo/spike-mae_e-spikeformer-tiny_shapes.py \
#       work_dirs/spike-mae_e-spikeformer-tiny_shapes/iter_300.pth
_base_ = [
    '../_base_/models/spike-mae_e-spikeformer-83m.py',
    '../_base_/mmpretrain_runtime.py'
]

data_root = 'data/shapes_cls'
# The 83M model (../_base_/models/spike-mae_e-spikeformer-83m.py) at demo
# size: the encoder above and a 128-wide, 2-layer decoder.
model = dict(
    backbone=dict(
        arch=dict(
            _delete_=True,
            family='large',
            embed_dims=[32, 64, 128],
            depth=2,
            rep_conv=True)),
    neck=dict(in_channels=128, embed_dims=128, depth=2))

data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[127.5, 127.5, 127.5],
    std=[64.0, 64.0, 64.0],
    to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.2, 1.0)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='sdt3_mm.ShapesClassification',
        data_root=data_root,
        split='train',
        pipeline=train_pipeline))

optim_wrapper = dict(
    optimizer=dict(
        type='AdamW', lr=1.5e-3, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
max_iters = 300
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-5,
        by_epoch=False,
        begin=30,
        end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
log_processor = dict(by_epoch=False)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(
        type='sdt3_mm.AtomicCheckpointHook',
        by_epoch=False,
        interval=100,
        max_keep_ckpts=1))
randomness = dict(seed=0)
