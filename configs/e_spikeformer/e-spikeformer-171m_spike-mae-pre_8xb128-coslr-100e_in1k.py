# E-SpikeFormer 171M ("173M" in the paper) fine-tuned at 224 px, 1 x 4.
_base_ = './e-spikeformer-83m_spike-mae-pre_8xb128-coslr-100e_in1k.py'

model = dict(
    backbone=dict(
        arch='171m',
        init_cfg=dict(
            checkpoint='checkpoints/spike-mae_e-spikeformer-171m_in1k.pth')),
    head=dict(in_channels=768))
