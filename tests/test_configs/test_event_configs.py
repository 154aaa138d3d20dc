"""The event-stream configs: the event demo (simulated camera) and DVS
Gesture (tonic's data), their pipelines on real files and a train step."""
import os.path as osp

import numpy as np
import tonic
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from sdt3_mm.datasets import write_event_split
from sdt3_mm.engine import render_event_frames

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(ROOT, 'configs/demo/e-spikeformer-t_shapes-events.py')
GESTURE = osp.join(
    ROOT, 'configs/dvs_gesture/e-spikeformer-l_1xb16-100e_dvs-gesture-t16.py')


def _build(cfg, key):
    from mmpretrain.registry import DATASETS, MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return (MODELS if key == 'model' else DATASETS).build(cfg)


def test_event_demo_trains_on_its_frames(tmp_path):
    cfg = Config.fromfile(DEMO)
    datasets = []
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.update(
            data_root=str(tmp_path / 'events'), num_train=12, num_val=6)
        datasets.append(_build(loader.dataset, 'dataset'))
    train, val = datasets
    assert train.metainfo['classes'][:2] == ('move_left', 'move_right')
    assert len(train) == 12 and len(val) == 6
    torch.manual_seed(0)
    np.random.seed(0)
    batch = pseudo_collate([train[i] for i in range(12)])
    # T = 4 frames of ON / OFF counts, 64 x 64 events to 32 x 32 frames
    assert batch['inputs'][0].shape == (4, 2, 32, 32)
    assert batch['inputs'][0].sum() > 0

    model = _build(cfg.model, 'model')
    model.init_weights()
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    before = model.head.fc.weight.detach().clone()
    losses = model.train_step(batch, optim_wrapper)
    assert torch.isfinite(losses['loss'])
    assert not torch.equal(model.head.fc.weight, before)
    model.eval()
    outputs = model.val_step(pseudo_collate([val[i] for i in range(6)]))
    assert outputs[0].pred_score.shape == (6, )


def _mirror(name):
    """The gesture a mirror shows: the other hand and turning sense."""
    swaps = {'Right': 'Left', 'Left': 'Right', 'cw': 'ccw', 'ccw': 'cw'}
    return ' '.join(swaps.get(word, word) for word in name.split())


def test_dvs_gesture_flip_maps_each_gesture_to_its_mirror_image():
    cfg = Config.fromfile(GESTURE)
    classes = tonic.datasets.DVSGesture.classes
    flips = [
        t for t in cfg.train_dataloader.dataset.pipeline
        if t.type == 'sdt3_mm.RandomFlipEvents'
    ]
    assert len(flips) == 1 and flips[0].direction == 'horizontal'
    label_map = flips[0].label_map
    for label, name in enumerate(classes):
        mirrored = classes[label_map.get(label, label)]
        # unchanged where the mirror image is the same gesture
        assert mirrored == (_mirror(name)
                            if _mirror(name) in classes else name), name
    assert len(label_map) == 6


def test_dvs_gesture_pipeline_on_converted_recordings(tmp_path):
    cfg = Config.fromfile(GESTURE)
    classes = tonic.datasets.DVSGesture.classes
    rng = np.random.default_rng(0)
    samples = []
    for label in range(len(classes)):
        num = 500
        samples.append((tonic.io.make_structured_array(
            rng.integers(0, 128, num), rng.integers(0, 128, num),
            np.sort(rng.integers(0, 6_000_000, num)),
            rng.integers(0, 2, num).astype(bool)), label))
    out = str(tmp_path / 'dvs_gesture')
    write_event_split(samples, classes, out, 'train')
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.update(
        data_root=out, classes=osp.join(out, 'meta', 'classes.txt'))
    dataset = _build(dataset_cfg, 'dataset')
    assert dataset.metainfo['classes'] == tuple(classes)
    sample = dataset[3]
    frames = sample['inputs']
    assert frames.shape == (16, 2, 128, 128)
    # every event kept but those dropped (at most 10%)
    assert 450 <= frames.sum() <= 500
    # test.py --show-dir paints them with the config's hook
    assert cfg.default_hooks.visualization.type == \
        'sdt3_mm.EventVisualizationHook'
    painted = render_event_frames(frames)
    assert painted.shape == (3, 128, 128) and painted.max() == 255
    model = _build(cfg.model, 'model')
    assert model.head.num_classes == 11
    assert model.backbone.in_channels == 2
