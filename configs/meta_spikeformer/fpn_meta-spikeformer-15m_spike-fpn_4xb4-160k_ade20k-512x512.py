# Semantic FPN on ADE20K with Meta-SpikeFormer 15M at T = 1: the
# E-SpikeFormer L recipe (same widths), quantised neck and head.
_base_ = '../sem_fpn/fpn_e-spikeformer-l_spike-fpn_4xb4-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='sdt3_mm.MetaSpikeFormer',
        arch='15m',
        T=1,
        out_indices=(0, 1, 2, 4),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/meta-spikeformer-15m_in1k.pth')))
