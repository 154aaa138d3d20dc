# RetinaNet 1x on COCO: MMDetection's own config, FPN and head, with only the
# backbone swapped for E-SpikeFormer S. Taps 2 and 4 (strides 8 and 16) feed
# the FPN from its first level; its extra convs make strides 32, 64, 128.
_base_ = [
    'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
    '../_base_/reliability.py'
]

model = dict(
    backbone=dict(
        _delete_=True,
        type='sdt3_mm.ESpikeFormer',
        arch='s',
        out_indices=(2, 4),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/e-spikeformer-s_in1k.pth')),
    neck=dict(in_channels=[64, 192], start_level=0))

# AdamW, as for other transformer backbones in MMDetection.
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0))
# MMDetection's CocoDataset with its annotation file checked (an empty or
# broken file, no categories, a class missing or in another order refused,
# naming the file).
train_dataloader = dict(dataset=dict(type='sdt3_mm.CheckedCocoDataset'))
val_dataloader = dict(dataset=dict(type='sdt3_mm.CheckedCocoDataset'))
test_dataloader = val_dataloader
# Checkpoints are written atomically: a kill never loses the last one.
default_hooks = dict(checkpoint=dict(type='sdt3_mm.AtomicCheckpointHook'))
# Resumes exactly from iteration checkpoints inside an epoch, too.
train_cfg = dict(type='sdt3_mm.ResumableEpochBasedTrainLoop')
