# E-SpikeFormer 171M ("173M" in the paper) fine-tuned at 224 px, 1 x 4.
_base_ = './e-spikeformer-83m_spike-mae-pre_8xb128-coslr-100e_in1k.py'

# From ../spike_mae/spike-mae_e-spikeformer-171m_8xb256-200e_in1k.py
pretrained = ('work_dirs/spike-mae_e-spikeformer-171m_8xb256-200e_in1k/'
              'epoch_200.pth')
model = dict(
    backbone=dict(
        arch='171m',
        init_cfg=dict(
            checkpoint=pretrained)),
    head=dict(in_channels=768))
