"""The three libraries' inferencers on our demo configs and a real
photograph (matplotlib's ``grace_hopper.jpg``), as
docs/en/user_guides/inference_and_deployment.md runs them: each builds our
model from the config, loads a checkpoint as our training writes it (with
mmengine's logging state, which torch's weights-only load refuses by
itself: loaded under ``safe_checkpoint_loading``) and returns its
library's prediction for the photo; ``out_dir`` gets the painted image."""
import os.path as osp

import matplotlib
import mmcv
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import sdt3_mm  # noqa: F401  (registers our modules)
from sdt3_mm.datasets.demo import SHAPE_CLASSES
from sdt3_mm.reliability import safe_checkpoint_loading

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PHOTO = osp.join(matplotlib.get_data_path(), 'sample_data', 'grace_hopper.jpg')
CONFIGS = {
    'cls': 'configs/demo/e-spikeformer-t_shapes-cls.py',
    'seg': 'configs/demo/fpn_e-spikeformer-t_spike-fpn_shapes-seg.py',
    'det': 'configs/demo/mask-rcnn_e-spikeformer-t_spike-fpn_shapes.py',
}


def _checkpoint(name, tmp_path):
    """A checkpoint of the demo model (random weights) holding what a
    runner's checkpoint holds besides the weights: the message hub's
    ``HistoryBuffer``s."""
    from mmengine.logging import MessageHub

    from sdt3_mm.deployment import build_model
    torch.manual_seed(0)
    cfg = Config.fromfile(osp.join(ROOT, CONFIGS[name]))
    hub = MessageHub.get_instance(f'test_inferencers_{name}')
    hub.update_scalar('train/loss', 1.5)
    path = str(tmp_path / f'{name}.pth')
    torch.save(
        {
            'meta': dict(epoch=1, iter=10),
            'state_dict': build_model(cfg).state_dict(),
            'message_hub': hub.state_dict()
        }, path)
    return path


def test_image_classification_inferencer(tmp_path):
    from mmpretrain.apis import ImageClassificationInferencer
    with DefaultScope.overwrite_default_scope('mmpretrain'), \
            safe_checkpoint_loading():
        inferencer = ImageClassificationInferencer(
            osp.join(ROOT, CONFIGS['cls']),
            pretrained=_checkpoint('cls', tmp_path),
            device='cpu')
        result = inferencer(PHOTO)[0]
    assert result['pred_scores'].shape == (len(SHAPE_CLASSES), )
    # the class names come from the checkpoint-less config's data set
    assert result['pred_class'] == SHAPE_CLASSES[result['pred_label']]


def test_mmseg_inferencer_paints_the_photo(tmp_path):
    from mmseg.apis import MMSegInferencer
    out_dir = tmp_path / 'seg'
    with safe_checkpoint_loading():
        inferencer = MMSegInferencer(
            osp.join(ROOT, CONFIGS['seg']),
            weights=_checkpoint('seg', tmp_path),
            device='cpu')
    result = inferencer(PHOTO, out_dir=str(out_dir))
    height, width = mmcv.imread(PHOTO).shape[:2]
    assert result['predictions'].shape == (height, width)
    assert (out_dir / 'vis' / 'grace_hopper.jpg').is_file()


def test_det_inferencer_paints_the_photo(tmp_path):
    from mmdet.apis import DetInferencer
    out_dir = tmp_path / 'det'
    with safe_checkpoint_loading():
        inferencer = DetInferencer(
            osp.join(ROOT, CONFIGS['det']),
            weights=_checkpoint('det', tmp_path),
            device='cpu')
    result = inferencer(PHOTO, out_dir=str(out_dir), no_save_pred=False)
    prediction = result['predictions'][0]
    assert set(prediction) >= {'labels', 'scores', 'bboxes', 'masks'}
    assert len(prediction['labels']) == len(prediction['bboxes'])
    assert (out_dir / 'vis' / 'grace_hopper.jpg').is_file()
    assert (out_dir / 'preds' / 'grace_hopper.json').is_file()
