"""tools/deployment/pytorch2onnx.py on the demo classifier, segmentor and
detector (backbone plus neck): the files it writes run in onnxruntime at
two sizes within 1e-4 of PyTorch, --verify says so (and fails beyond
--atol), --image runs the file on an image."""
import glob
import os
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools/deployment/pytorch2onnx.py')
CONFIGS = {
    'cls': 'configs/demo/e-spikeformer-t_shapes-cls.py',
    'seg': 'configs/demo/fpn_e-spikeformer-t_spike-fpn_shapes-seg.py',
    'det': 'configs/demo/mask-rcnn_e-spikeformer-t_spike-fpn_shapes.py',
}

pytest.importorskip('onnxruntime')


def _small_set(data_root):
    return [
        f'test_dataloader.dataset.data_root={data_root}',
        'test_dataloader.dataset.num_train=4',
        'test_dataloader.dataset.num_val=4'
    ]


def _model(name, checkpoint=None):
    from sdt3_mm.deployment import build_model
    cfg = Config.fromfile(osp.join(ROOT, CONFIGS[name]))
    return build_model(cfg, checkpoint)


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """Randomly initialised weights with BN statistics away from their
    defaults, one checkpoint per demo model."""
    tmp = tmp_path_factory.mktemp('pytorch2onnx')
    paths = {}
    for name in CONFIGS:
        torch.manual_seed(0)
        model = _model(name)
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2)
        paths[name] = str(tmp / f'{name}.pth')
        torch.save({'state_dict': model.state_dict()}, paths[name])
    return tmp, paths


def _run(args):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    return subprocess.run(
        [sys.executable, TOOL] + args,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True)


def _export(checkpoints, name, extra=()):
    tmp, paths = checkpoints
    out = str(tmp / f'{name}.onnx')
    result = _run(
        [osp.join(ROOT, CONFIGS[name]), paths[name], '--out', out, '--verify'
         ] + list(extra) + ['--cfg-options'] +
        _small_set(str(tmp / f'{name}_data')))
    assert result.returncode == 0, result.stdout[-3000:] + \
        result.stderr[-3000:]
    return out, result.stdout


@pytest.mark.parametrize('name,extra', [('cls', ()), ('seg', ('--fold-bn', )),
                                        ('det', ())])
def test_export_runs_in_onnxruntime_at_two_sizes(checkpoints, name, extra):
    import onnxruntime as ort

    from sdt3_mm.analysis import fold_bn
    from sdt3_mm.deployment import export_module
    out, log = _export(checkpoints, name, extra)
    # --verify compared at the pipeline size and a second one
    sizes = set(re.findall(r'at (\d+x\d+): max abs difference', log))
    assert len(sizes) == 2, log
    assert 'verified' in log
    # and independently: the file against the checkpoint's model
    model = _model(name, checkpoints[1][name])
    if '--fold-bn' in extra:
        model = fold_bn(model)
    scope = {'cls': 'mmpretrain', 'seg': 'mmseg', 'det': 'mmdet'}[name]
    module, _ = export_module(model, scope)
    session = ort.InferenceSession(out, providers=['CPUExecutionProvider'])
    torch.manual_seed(1)
    for size in [(64, 96), (128, 64)]:
        x = torch.randn(2, 3, *size)
        with torch.no_grad():
            expected = module(x)
        expected = list(expected) if isinstance(expected,
                                                tuple) else [expected]
        got = session.run(None, {'input': x.numpy()})
        assert len(got) == len(expected)
        for a, b in zip(got, expected):
            assert a.shape == tuple(b.shape)
            assert np.abs(a - b.numpy()).max() <= 1e-4, (name, size)
    if name == 'seg':
        assert got[0].shape[2:] == size  # logits at the input size
    if name == 'det':
        assert len(got) == 5  # the FPN levels


def test_verify_fails_beyond_atol_and_image_inference(checkpoints):
    tmp, paths = checkpoints
    result = _run([
        osp.join(ROOT, CONFIGS['cls']), paths['cls'], '--out',
        str(tmp / 'strict.onnx'), '--verify', '--num-images', '2', '--atol',
        '-1', '--cfg-options'
    ] + _small_set(str(tmp / 'cls_data')))
    assert result.returncode == 1
    assert 'verification failed' in result.stderr
    image = sorted(
        glob.glob(str(tmp / 'cls_data' / '**' / '*.png'), recursive=True))[0]
    from sdt3_mm.deployment import onnx_inference
    scores = onnx_inference(
        str(tmp / 'strict.onnx'), osp.join(ROOT, CONFIGS['cls']), image)
    assert scores.shape == (6, )
    assert abs(float(scores.sum()) - 1) < 1e-5


def test_unknown_scope_is_refused():
    from sdt3_mm.deployment import config_scope
    with pytest.raises(ValueError, match="scope 'mmpose'"):
        config_scope(Config(dict(default_scope='mmpose')))
