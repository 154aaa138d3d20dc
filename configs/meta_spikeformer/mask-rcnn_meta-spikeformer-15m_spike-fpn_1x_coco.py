# Mask R-CNN 1x on COCO with Meta-SpikeFormer 15M (widths 64/128/256/360,
# the same as E-SpikeFormer L): the E-SpikeFormer L recipe and spiking
# neck / heads, with the V2 backbone at T = 1 (its taps averaged over the
# time steps when T > 1).
_base_ = '../mask_rcnn/mask-rcnn_e-spikeformer-l_spike-fpn_1x_coco.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='sdt3_mm.MetaSpikeFormer',
        arch='15m',
        T=1,
        out_indices=(1, 2, 3, 4),
        # An ImageNet checkpoint of the 15M model (ours, or official).
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/meta-spikeformer-15m_in1k.pth')))
