# Mask R-CNN 1x on COCO with E-SpikeFormer M (10M): the L recipe with the
# paper's narrower neck and heads (192 channels).
_base_ = './mask-rcnn_e-spikeformer-l_spike-fpn_1x_coco.py'

channels = 192
model = dict(
    backbone=dict(
        arch='m',
        init_cfg=dict(checkpoint='checkpoints/e-spikeformer-m_in1k.pth')),
    neck=dict(in_channels=[48, 96, 192, 240], out_channels=channels),
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(in_channels=channels),
        mask_roi_extractor=dict(out_channels=channels),
        mask_head=dict(in_channels=channels, conv_out_channels=channels)))
