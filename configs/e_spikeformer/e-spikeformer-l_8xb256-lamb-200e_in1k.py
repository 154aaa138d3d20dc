# E-SpikeFormer L (19M): the S recipe at widths 64/128/256/360.
# Published ImageNet-1k top-1: 79.8.
_base_ = './e-spikeformer-s_8xb256-lamb-200e_in1k.py'

model = dict(backbone=dict(arch='l'), head=dict(in_channels=360))
