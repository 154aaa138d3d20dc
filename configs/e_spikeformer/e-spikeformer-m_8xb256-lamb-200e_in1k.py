# E-SpikeFormer M (10M): the S recipe at widths 48/96/192/240.
# Published ImageNet-1k top-1: 78.5.
_base_ = './e-spikeformer-s_8xb256-lamb-200e_in1k.py'

model = dict(backbone=dict(arch='m'), head=dict(in_channels=240))
