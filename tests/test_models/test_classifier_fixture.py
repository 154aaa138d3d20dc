"""A converted official checkpoint reproduces the reference's logits
through MMPretrain's ImageClassifier."""
import os.path as osp
import subprocess
import sys

import torch
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FIXTURE = osp.join(ROOT, 'tests', 'data', 'e_spikeformer_s_official.pth')


def test_converted_checkpoint_eval_logits(official_fixture, tmp_path):
    from mmpretrain.registry import MODELS
    dst = str(tmp_path / 'e-spikeformer-s.pth')
    subprocess.run([
        sys.executable,
        osp.join(ROOT, 'tools/model_converters/sdt3_official_to_mm.py'),
        FIXTURE, dst
    ],
                   check=True,
                   capture_output=True)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(
            dict(
                type='ImageClassifier',
                backbone=dict(type='sdt3_mm.ESpikeFormer', arch='s'),
                head=dict(
                    type='sdt3_mm.SpikeClsHead',
                    num_classes=1000,
                    in_channels=192)))
    load_checkpoint(model, dst, map_location='cpu', strict=True)
    model.eval()
    with torch.no_grad():
        logits = model(official_fixture['input'], mode='tensor')
    diff = (logits - official_fixture['eval_logits']).abs().max()
    assert diff <= 1e-4
