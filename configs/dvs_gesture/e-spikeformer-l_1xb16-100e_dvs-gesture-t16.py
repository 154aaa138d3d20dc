# E-SpikeFormer L on DVS128 Gesture (11 gestures, 128 x 128 x 2 events),
# each recording binned into T = 16 frames of ON / OFF counts as tonic's
# ToFrame(n_time_bins=16) does (the last frame also taking the remainder).
# The model and optimisation are the HARDVS recipe's (../hardvs); the
# data come from tonic, converted once:
#   python tools/dataset_converters/tonic_to_npz.py DVSGesture \
#       data/tonic data/dvs_gesture
# An example recipe, not the paper's (the paper has no DVS Gesture run of
# E-SpikeFormer), and not trained here.
_base_ = ['../hardvs/e-spikeformer-l_3xb24-100e_hardvs-t8.py']

data_root = 'data/dvs_gesture'
num_classes = 11
num_frames = 16
sensor_size = (128, 128, 2)  # W, H, polarities (tonic's DVSGesture)

model = dict(
    data_preprocessor=dict(num_classes=num_classes),
    head=dict(num_classes=num_classes, topk=(1, )))

# A mirrored recording shows the other hand (and the other turning sense):
# right hand wave <-> left hand wave, right arm cw <-> left arm ccw, right
# arm ccw <-> left arm cw (tonic's class order).
mirror_labels = {1: 2, 2: 1, 3: 6, 6: 3, 4: 5, 5: 4}
train_pipeline = [
    dict(type='sdt3_mm.LoadEvents', sensor_size=sensor_size),
    dict(type='sdt3_mm.RandomDropEvents', drop_prob=(0., 0.1)),
    dict(
        type='sdt3_mm.RandomFlipEvents',
        prob=0.5,
        direction='horizontal',
        label_map=mirror_labels),
    dict(type='sdt3_mm.EventsToFrames', num_frames=num_frames, by='time'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='sdt3_mm.LoadEvents', sensor_size=sensor_size),
    dict(type='sdt3_mm.EventsToFrames', num_frames=num_frames, by='time'),
    dict(type='PackInputs'),
]

_dataset = dict(
    _delete_=True,
    type='sdt3_mm.EventStreamDataset',
    data_root=data_root,
    classes=f'{data_root}/meta/classes.txt')
train_dataloader = dict(
    batch_size=16,
    num_workers=4,
    dataset=dict(
        **_dataset,
        data_prefix='train',
        ann_file='meta/train.txt',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=4,
    dataset=dict(
        **_dataset,
        data_prefix='test',
        ann_file='meta/test.txt',
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

# The reference's rule, lr = 4e-5 x batch / 256, for one GPU x 16.
optim_wrapper = dict(optimizer=dict(lr=4e-5 * 16 / 256))
auto_scale_lr = dict(base_batch_size=16)

# Off unless a test tool turns it on (test.py --show / --show-dir): the
# recordings painted time-summed, ON red, OFF blue (MMPretrain's own hook
# fails on the (T, 2, H, W) frames).
default_hooks = dict(
    visualization=dict(type='sdt3_mm.EventVisualizationHook', enable=False))
