# E-SpikeFormer T on the embedded shapes set (six classes of textured
# shapes, 64 x 64, 1200 training and 300 held-out images). The set writes
# itself into data/shapes_cls on first use. Runs on 2 CPU cores:
#   python tools/train.py configs/demo/e-spikeformer-t_shapes-cls.py
# The model, loaders, optimiser and hooks: ./_base_/shapes_classifier.py.
_base_ = ['./_base_/shapes_classifier.py']

data_root = 'data/shapes_cls'

data_preprocessor = dict(
    num_classes=_base_.num_classes,
    mean=[127.5, 127.5, 127.5],
    std=[64.0, 64.0, 64.0],
    to_rgb=True)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomFlip',
        prob=[0.25, 0.25],
        direction=['horizontal', 'vertical']),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=64,
    dataset=dict(
        type='sdt3_mm.ShapesClassification',
        data_root=data_root,
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        type='sdt3_mm.ShapesClassification',
        data_root=data_root,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 20
param_scheduler = [
    dict(**_base_.linear_warmup, start_factor=0.01, end=2),
    dict(**_base_.cosine_decay, eta_min=1e-5, begin=2, end=max_epochs),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=4)
default_hooks = dict(checkpoint=dict(interval=4))
