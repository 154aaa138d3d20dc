# E-SpikeFormer 171M ("173M") fine-tuned at 384 px with D = 8 ("1 x 8"),
# the setting of the published ImageNet-1k top-1 of 86.2.
_base_ = './e-spikeformer-83m_spike-mae-pre_8xb64-coslr-100e_in1k-384px.py'

# From ../spike_mae/spike-mae_e-spikeformer-171m_8xb256-200e_in1k.py
pretrained = ('work_dirs/spike-mae_e-spikeformer-171m_8xb256-200e_in1k/'
              'epoch_200.pth')
model = dict(
    backbone=dict(
        arch='171m',
        D=8,
        init_cfg=dict(
            checkpoint=pretrained)),
    head=dict(
        in_channels=768,
        neuron_cfg=dict(
            type='SFANeuron', D=8, norm=1, rounding='half_up', bounds='open')))
