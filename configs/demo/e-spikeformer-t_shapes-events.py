# E-SpikeFormer T on the embedded event-camera set: recordings of a
# simulated 64 x 64 event camera watching a textured shape move left, right,
# up or down, grow or shrink (six classes, 1200 training and 300 held-out
# recordings of 0.1 s). The set writes itself into data/shapes_events on
# first use. Each recording is binned into T = 4 frames of ON / OFF counts
# (as tonic's ToFrame), each frame classified on its own and the logits
# averaged over the frames. Runs on 2 CPU cores:
#   python tools/train.py configs/demo/e-spikeformer-t_shapes-events.py
# The model, loaders, optimiser and hooks: ./_base_/shapes_classifier.py.
_base_ = ['./_base_/shapes_classifier.py']

data_root = 'data/shapes_events'
num_frames = 4
sensor_size = (64, 64, 2)  # W, H, polarities
input_size = (32, 32)  # W, H of the frames

model = dict(
    # Event frames: no colour order, no normalisation; B x T x 2 x H x W.
    data_preprocessor=dict(
        type='sdt3_mm.FramesDataPreprocessor',
        num_classes=_base_.num_classes),
    backbone=dict(in_channels=2))

# Mirroring swaps left and right (up and down): the labels follow.
train_pipeline = [
    dict(type='sdt3_mm.LoadEvents', sensor_size=sensor_size),
    dict(type='sdt3_mm.RandomDropEvents', drop_prob=(0., 0.2)),
    dict(
        type='sdt3_mm.RandomFlipEvents',
        prob=0.5,
        direction='horizontal',
        label_map={
            0: 1,
            1: 0
        }),
    dict(
        type='sdt3_mm.RandomFlipEvents',
        prob=0.5,
        direction='vertical',
        label_map={
            2: 3,
            3: 2
        }),
    dict(type='sdt3_mm.EventsToFrames', num_frames=num_frames, by='time'),
    dict(type='sdt3_mm.ResizeFrames', scale=input_size),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='sdt3_mm.LoadEvents', sensor_size=sensor_size),
    dict(type='sdt3_mm.EventsToFrames', num_frames=num_frames, by='time'),
    dict(type='sdt3_mm.ResizeFrames', scale=input_size),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=32,
    dataset=dict(
        type='sdt3_mm.ShapesEvents',
        data_root=data_root,
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        type='sdt3_mm.ShapesEvents',
        data_root=data_root,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 6
param_scheduler = [
    dict(**_base_.linear_warmup, start_factor=0.01, end=1),
    dict(**_base_.cosine_decay, eta_min=1e-5, begin=1, end=max_epochs),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=2)

default_hooks = dict(
    checkpoint=dict(interval=2),
    # Off unless a test tool turns it on (test.py --show / --show-dir):
    # MMPretrain's hook paints (C, H, W) images and fails on the (T, 2, H, W)
    # frames; this one paints each recording time-summed (ON red, OFF blue),
    # four times the 32 x 32 input.
    visualization=dict(
        type='sdt3_mm.EventVisualizationHook', enable=False,
        rescale_factor=4.))
