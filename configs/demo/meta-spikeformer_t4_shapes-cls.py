# Meta-SpikeFormer (V2) at T = 4 on the embedded shapes set, at the demo
# E-SpikeFormer's widths (24/48/96/128): the same data, schedule and
# augmentation as ./e-spikeformer-t_shapes-cls.py.
#   python tools/train.py configs/demo/meta-spikeformer_t4_shapes-cls.py
_base_ = './e-spikeformer-t_shapes-cls.py'

T = 4
model = dict(
    backbone=dict(
        _delete_=True,
        type='sdt3_mm.MetaSpikeFormer',
        arch=dict(family='meta', embed_dims=[24, 48, 96, 128]),
        T=T,
        average_time=False,
        zero_init_residual=True),
    # The base's head (six classes, 128 channels, its loss and top-k) as
    # Meta-SpikeFormer's: a neuron over the T steps, no distillation token.
    head=dict(type='sdt3_mm.MetaSpikeClsHead', T=T, kd=False))
