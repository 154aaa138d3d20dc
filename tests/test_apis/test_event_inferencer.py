"""Event recordings classified with the events demo config, as the
*Event recordings* example of docs/en/user_guides/inference_and_deployment.md
runs it: ``sdt3_mm.apis`` reads ``.npz`` files
(or arrays) with the config's test pipeline, which MMPretrain's image
inferencer and ``inference_model`` cannot do."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, default_collate
from mmengine.registry import DefaultScope

import sdt3_mm  # noqa: F401  (registers our modules)
from sdt3_mm.apis import EventClassificationInferencer, inference_events
from sdt3_mm.datasets import write_event_file
from sdt3_mm.datasets.demo import EVENT_SHAPE_CLASSES, event_sample
from sdt3_mm.reliability import safe_checkpoint_loading

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs/demo/e-spikeformer-t_shapes-events.py')


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """The demo model with random weights, saved as a runner saves it (with
    mmengine's logging state, refused by a bare weights-only load)."""
    from mmengine.logging import MessageHub

    from sdt3_mm.deployment import build_model
    torch.manual_seed(0)
    hub = MessageHub.get_instance('test_event_inferencer')
    hub.update_scalar('train/loss', 1.5)
    path = str(tmp_path_factory.mktemp('ckpt') / 'events.pth')
    torch.save(
        {
            'meta': dict(epoch=1, iter=10),
            'state_dict': build_model(Config.fromfile(CONFIG)).state_dict(),
            'message_hub': hub.state_dict()
        }, path)
    return path


@pytest.fixture(scope='module')
def recordings(tmp_path_factory):
    """Three recordings of the demo set's camera (64 x 64), as files."""
    folder = tmp_path_factory.mktemp('recordings')
    samples = [event_sample(7, 'val', i) for i in range(3)]
    for i, (events, _) in enumerate(samples):
        write_event_file(str(folder / f'{i}.npz'), events)
    return folder, [events for events, _ in samples]


def _test_step_scores(model, path):
    """What ``tools/test.py`` computes for one file: the config's test
    pipeline (LoadEvents included), collated, through the model."""
    cfg = Config.fromfile(CONFIG)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        pipeline = Compose(cfg.test_dataloader.dataset.pipeline)
        data = default_collate([pipeline(dict(img_path=str(path)))])
    with torch.no_grad():
        return model.test_step(data)[0].pred_score.numpy()


def test_files_folders_and_arrays_get_the_test_pipelines_scores(
        checkpoint, recordings):
    folder, arrays = recordings
    with safe_checkpoint_loading():
        inferencer = EventClassificationInferencer(
            CONFIG, pretrained=checkpoint, device='cpu')
    paths = [str(folder / f'{i}.npz') for i in range(3)]
    by_path = inferencer(paths, batch_size=2)
    by_folder = inferencer(str(folder))
    # in memory: tonic's layout, and a dict of wider integer arrays
    as_dict = {name: arrays[2][name].astype(np.int64) for name in 'xytp'}
    in_memory = inferencer([arrays[0], arrays[1], as_dict])
    assert len(by_path) == len(by_folder) == len(in_memory) == 3
    for i, path in enumerate(paths):
        expected = _test_step_scores(inferencer.model, path)
        for results in (by_path, by_folder, in_memory):
            result = results[i]
            np.testing.assert_allclose(
                result['pred_scores'], expected, rtol=1e-5, atol=1e-6)
            assert result['pred_label'] == int(expected.argmax())
            assert result['pred_class'] == \
                EVENT_SHAPE_CLASSES[result['pred_label']]


def test_get_model_then_inference_events(checkpoint, recordings):
    """MMPretrain's own model building, our inference call; MMPretrain's
    ``inference_model`` has no inferencer to pick for it (its task table
    is fixed), which the inference guide says."""
    from mmpretrain.apis import get_model, inference_model
    folder, _ = recordings
    with safe_checkpoint_loading():
        model = get_model(CONFIG, pretrained=checkpoint, device='cpu')
    path = str(folder / '0.npz')
    result = inference_events(model, path)
    np.testing.assert_allclose(
        result['pred_scores'],
        _test_step_scores(model, path),
        rtol=1e-5,
        atol=1e-6)
    assert result['pred_class'] in EVENT_SHAPE_CLASSES
    assert len(inference_events(model, [path, path])) == 2
    with pytest.raises(NotImplementedError, match='No available inferencer'):
        inference_model(model, path)


def test_bad_inputs_and_configs_are_named(tmp_path, checkpoint, recordings):
    folder, arrays = recordings
    with safe_checkpoint_loading():
        inferencer = EventClassificationInferencer(
            CONFIG, pretrained=checkpoint, device='cpu')
    backwards = arrays[0][::-1]
    with pytest.raises(ValueError, match='input 1: events are not sorted'):
        inferencer([arrays[0], backwards])
    outside = arrays[0].copy()
    outside['x'][5] = 64  # the config's sensor is 64 x 64
    write_event_file(str(tmp_path / 'wide.npz'), outside)
    with pytest.raises(ValueError, match=r'wide.npz: x values 0..64 reach'):
        inferencer(str(tmp_path / 'wide.npz'))
    with pytest.raises(ValueError, match="unknown argument {'show_dir'}"):
        inferencer(str(folder / '0.npz'), show_dir=str(tmp_path))
    image_config = osp.join(ROOT, 'configs/demo/e-spikeformer-t_shapes-cls.py')
    with pytest.raises(ValueError, match='must start with sdt3_mm.LoadEvents'):
        EventClassificationInferencer(image_config, pretrained=False)


def test_class_names_from_the_configs_class_file(tmp_path, recordings):
    """A config of our EventStreamDataset names its classes in a file
    (``tonic_to_npz.py`` writes ``meta/classes.txt``): a model without
    ``dataset_meta`` takes its names from there."""
    folder, _ = recordings
    (tmp_path / 'classes.txt').write_text(''.join(
        f'gesture_{i}\n' for i in range(len(EVENT_SHAPE_CLASSES))))
    cfg = Config.fromfile(CONFIG)
    cfg.test_dataloader.dataset = dict(
        type='sdt3_mm.EventStreamDataset',
        data_root=str(tmp_path),
        classes=str(tmp_path / 'classes.txt'),
        pipeline=cfg.test_dataloader.dataset.pipeline)
    inferencer = EventClassificationInferencer(
        cfg, pretrained=False, device='cpu')
    result = inferencer(str(folder / '0.npz'))[0]
    assert result['pred_class'] == f'gesture_{result["pred_label"]}'


def test_builds_whatever_registry_scope_is_current(recordings):
    """The config's transforms are named without a scope (``PackInputs``);
    the inferencer builds them in MMPretrain's scope even when another
    library's is current (a detector built earlier in the process), and
    leaves that scope current."""
    folder, _ = recordings
    with DefaultScope.overwrite_default_scope('mmdet'):
        inferencer = EventClassificationInferencer(
            CONFIG, pretrained=False, device='cpu')
        assert DefaultScope.get_current_instance().scope_name == 'mmdet'
    result = inferencer(str(folder / '0.npz'))[0]
    assert result['pred_class'] in EVENT_SHAPE_CLASSES
