"""Converted official checkpoints (E-SpikeFormer and Meta-SpikeFormer)
reproduce the reference's logits through MMPretrain's ImageClassifier."""
import os.path as osp
import subprocess
import sys

import torch
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _converted_classifier(checkpoint, backbone, head, tmp_path):
    from mmpretrain.registry import MODELS
    dst = str(tmp_path / 'converted.pth')
    subprocess.run([
        sys.executable,
        osp.join(ROOT, 'tools/model_converters/sdt3_official_to_mm.py'),
        checkpoint, dst
    ],
                   check=True,
                   capture_output=True)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(
            dict(type='ImageClassifier', backbone=backbone, head=head))
    load_checkpoint(model, dst, map_location='cpu', strict=True)
    return model.eval()


def test_converted_checkpoint_eval_logits(official_fixture, tmp_path):
    model = _converted_classifier(
        official_fixture['checkpoint'],
        dict(type='sdt3_mm.ESpikeFormer', arch='s'),
        dict(type='sdt3_mm.SpikeClsHead', num_classes=1000, in_channels=192),
        tmp_path)
    with torch.no_grad():
        logits = model(official_fixture['input'], mode='tensor')
    diff = (logits - official_fixture['eval_logits']).abs().max()
    assert diff <= 1e-4


def test_converted_meta_spikeformer_eval_logits(meta_reference, tmp_path):
    model = _converted_classifier(
        meta_reference['checkpoint'],
        dict(
            type='sdt3_mm.MetaSpikeFormer',
            arch=dict(family='meta', embed_dims=[32, 64, 128, 160]),
            T=4,
            average_time=False),
        dict(
            type='sdt3_mm.MetaSpikeClsHead',
            num_classes=10,
            in_channels=160,
            T=4), tmp_path)
    with torch.no_grad():
        logits = model(meta_reference['input'], mode='tensor')
    assert (logits - meta_reference['eval_logits']).abs().max() <= 1e-4
