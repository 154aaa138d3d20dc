# Spike-masked autoencoder pretraining of E-SpikeFormer 171M ("173M" in the
# paper): the 83M recipe (./spike-mae_e-spikeformer-83m_8xb256-200e_in1k.py)
# at widths 196/384/768. Fine-tune with
# ../e_spikeformer/e-spikeformer-171m_spike-mae-pre_8xb128-coslr-100e_in1k.py.
_base_ = './spike-mae_e-spikeformer-83m_8xb256-200e_in1k.py'

model = dict(backbone=dict(arch='171m'), neck=dict(in_channels=768))
