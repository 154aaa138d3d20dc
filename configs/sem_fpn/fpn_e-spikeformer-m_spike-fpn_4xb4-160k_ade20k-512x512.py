# Semantic FPN on ADE20K with E-SpikeFormer M (10M): the L recipe.
_base_ = './fpn_e-spikeformer-l_spike-fpn_4xb4-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(
        arch='m',
        init_cfg=dict(checkpoint='checkpoints/e-spikeformer-m_in1k.pth')),
    neck=dict(in_channels=[24, 48, 96, 240]))
