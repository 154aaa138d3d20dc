"""tools/deployment/pytorch2onnx.py on the demo classifier, segmentor,
detector (backbone plus neck) and event classifier (B x T x C x H x W
clips): the files it writes run in onnxruntime at two sizes within 1e-4
of PyTorch, --verify says so (and fails beyond --atol), --image runs the
file on an image."""
import functools
import glob
import os
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from demo_runs import small_set_options
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools/deployment/pytorch2onnx.py')
CONFIGS = {
    'cls': 'configs/demo/e-spikeformer-t_shapes-cls.py',
    'seg': 'configs/demo/fpn_e-spikeformer-t_spike-fpn_shapes-seg.py',
    'det': 'configs/demo/mask-rcnn_e-spikeformer-t_spike-fpn_shapes.py',
    'meta': 'configs/demo/meta-spikeformer_t4_shapes-cls.py',
    'events': 'configs/demo/e-spikeformer-t_shapes-events.py',
}

# The demo set cut to 4 training and 4 held-out images; the training set
# too: --int8 calibrates on its images.
_small_set = functools.partial(
    small_set_options,
    num_train=4,
    num_val=4,
    loaders=('train_dataloader', 'test_dataloader'))

pytest.importorskip('onnxruntime')


def _model(name, checkpoint=None):
    from mmengine.registry import DefaultScope

    from sdt3_mm.deployment import build_model
    cfg = Config.fromfile(osp.join(ROOT, CONFIGS[name]))
    # build_model makes the config's scope current: not beyond this call
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
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


@pytest.mark.parametrize('name,extra', [('cls', ('--int8', )),
                                        ('seg', ('--fold-bn', )), ('det', ()),
                                        ('meta', ())])
def test_export_runs_in_onnxruntime_at_two_sizes(checkpoints, name, extra):
    import onnxruntime as ort

    from sdt3_mm.analysis import fold_bn
    from sdt3_mm.deployment import export_module
    out, log = _export(checkpoints, name, extra)
    # --verify compared at the pipeline size and a second one
    sizes = set(re.findall(r'at (\d+x\d+): max abs difference', log))
    assert len(sizes) == 2, log
    assert 'verified' in log
    # every neuron's spikes compared (the file's neurons matched the
    # model's), Meta-SpikeFormer's LIF neurons included
    compared = re.findall(r'spikes differing (\d+) of (\d+)', log)
    assert len(compared) >= 2 and all(
        int(m) >= 0 and int(n) > 0 for m, n in compared), log
    calls = re.findall(r'\((\d+) of (\d+) neuron calls compared\)', log)
    assert len(calls) >= 2 and all(a == b != '0' for a, b in calls), log
    # and independently: the file against the checkpoint's model
    model = _model(name, checkpoints[1][name])
    if '--fold-bn' in extra:
        model = fold_bn(model)
    scope = {
        'cls': 'mmpretrain',
        'seg': 'mmseg',
        'det': 'mmdet',
        'meta': 'mmpretrain'
    }[name]
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
    if '--int8' in extra:
        assert re.search(r'int8 model written to .*_int8\.onnx \((\d+) spike',
                         log), log
        assert len(
            set(re.findall(r'int8 onnxruntime vs PyTorch at (\d+x\d+)',
                           log))) == 2, log
        int8 = ort.InferenceSession(
            out[:-len('.onnx')] + '_int8.onnx',
            providers=['CPUExecutionProvider'])
        assert int8.run(None, {'input': x.numpy()})[0].shape == (2, 6)
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


def _spiking_neuron_count(name):
    from sdt3_mm.models.neurons.spiking_neuron import spiking_neurons
    return len(spiking_neurons(_model(name)))


def test_exported_neurons_have_no_straight_through_sums(checkpoints):
    """The file fires round(clamp(x)) / norm per neuron: the traced
    level + (round(level) - level) is gone (values checked above)."""
    import onnx
    out, _ = _export(checkpoints, 'cls')
    ops = [node.op_type for node in onnx.load(out).graph.node]
    neurons = _spiking_neuron_count('cls')
    assert ops.count('Round') == ops.count('Clip') == neurons
    assert 'Sub' not in ops


def test_int8_quantisation_keeps_every_spike_exact(tmp_path):
    """quantize_int8 gives each neuron output uint8 scale 1/norm, zero
    point 0 (exact for k / norm, k in 0..D), and the file runs."""
    import onnx
    import onnxruntime as ort
    from onnx.numpy_helper import to_array

    from sdt3_mm.deployment import export_module, export_onnx, quantize_int8
    torch.manual_seed(0)
    module, names = export_module(_model('cls'), 'mmpretrain')
    fp32 = str(tmp_path / 'fp32.onnx')
    export_onnx(module, torch.randn(1, 3, 64, 64), fp32, names)
    int8 = str(tmp_path / 'int8.onnx')
    calibration = [torch.randn(2, 3, 64, 64).numpy() for _ in range(2)]
    # neuron outputs and their reshapes
    assert quantize_int8(fp32, int8, calibration) > \
        _spiking_neuron_count('cls')

    graph = onnx.load(int8).graph
    constants = {init.name: to_array(init) for init in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}

    def spike_norm(name):
        """norm if ``name`` is a neuron output, moved or not, else None."""
        node = producers.get(name)
        while node is not None and node.op_type in ('Reshape', 'Transpose'):
            node = producers.get(node.input[0])
        if node is None:
            return None
        if node.op_type == 'Round':
            return 1.
        source = producers.get(node.input[0])
        if node.op_type == 'Div' and source is not None and \
                source.op_type == 'Round':
            return 4.  # the demo's neurons: D = norm = 4
        return None

    rounds = {node.output[0] for node in graph.node if node.op_type == 'Round'}
    assert len(rounds) == _spiking_neuron_count('cls')
    exact = inexact = 0
    for node in graph.node:
        if node.op_type != 'QuantizeLinear':
            continue
        norm = spike_norm(node.input[0])
        if norm is None:
            continue
        scale = constants[node.input[1]]
        zero = constants[node.input[2]]
        if zero.dtype == np.uint8 and zero == 0 and \
                scale == np.float32(1 / norm):
            exact += 1
        else:
            inexact += 1
    assert inexact == 0
    # every neuron's spikes reach a quantised op (the attention's q, k, v
    # after a reshape, k also transposed)
    assert exact >= len(rounds)
    session = ort.InferenceSession(int8, providers=['CPUExecutionProvider'])
    scores = session.run(None, {'input': calibration[0]})[0]
    assert scores.shape == (2, 6)
    np.testing.assert_allclose(scores.sum(1), 1, atol=1e-5)


def test_onnx_inference_tool_on_images(checkpoints):
    """tools/deployment/onnx_inference.py: top-5 of a classifier, label
    maps of the image's size from a segmentor."""
    tmp, _ = checkpoints
    tool = osp.join(ROOT, 'tools/deployment/onnx_inference.py')
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    for name in ('cls', 'seg'):
        out, _ = _export(checkpoints, name)
        images = sorted(
            glob.glob(
                str(tmp / f'{name}_data' / '**' / '*.jpg'), recursive=True) +
            glob.glob(
                str(tmp / f'{name}_data' / '**' / '*.png'), recursive=True))
        image = [p for p in images if '/annotations/' not in p][0]
        label_dir = tmp / f'{name}_labels'
        result = subprocess.run([
            sys.executable, tool,
            osp.join(ROOT, CONFIGS[name]), out, image, '--out-dir',
            str(label_dir)
        ],
                                cwd=ROOT,
                                env=env,
                                capture_output=True,
                                text=True)
        assert result.returncode == 0, result.stderr[-3000:]
        if name == 'cls':
            assert len(re.findall(r'^  \w+: [0-9.]+$', result.stdout,
                                  re.M)) == 5, result.stdout
        else:
            import mmcv
            label = mmcv.imread(
                str(label_dir /
                    (osp.splitext(osp.basename(image))[0] + '.png')),
                flag='unchanged')
            assert label.shape == mmcv.imread(image).shape[:2]
            assert 'pixels per class' in result.stdout


def test_verdict_accepts_differences_only_with_few_spike_flips():
    """A difference beyond atol passes only with a few spikes firing
    differently (rounding ties); with every spike equal, or many
    differing, it fails."""
    from sdt3_mm.deployment import Agreement, verification_verdict
    exact = Agreement((64, 64), 2e-7, 10**7, 0)
    assert verification_verdict([exact], atol=1e-4)[0]
    tie = Agreement((96, 128), 0.044, 10**7, 1)
    ok, message = verification_verdict([exact, tie], 1e-4, 1e-5)
    assert ok and '1 of 20000000 spikes' in message
    wrong = Agreement((96, 128), 0.044, 10**7, 0)
    ok, message = verification_verdict([exact, wrong], 1e-4, 1e-5)
    assert not ok and '0 of 20000000 spikes differ' in message
    many = Agreement((96, 128), 0.5, 10**7, 1000)
    assert not verification_verdict([many], 1e-4, 1e-5)[0]
    unmatched = Agreement((96, 128), 0.044, 0, 0)
    ok, message = verification_verdict([unmatched], 1e-4, 1e-5)
    assert not ok and 'spikes not compared' in message
    # flips explain a difference only when every neuron call was compared
    partly = Agreement((96, 128), 0.044, 10**7, 1, 100, 99)
    ok, message = verification_verdict([partly], 1e-4, 1e-5)
    assert not ok and '1 of 100 neuron calls not found' in message


def test_event_clips_export_with_dynamic_height_and_width(checkpoints):
    """The event demo through the tool: its clips (B x 4 x 2 x H x W) export
    with dynamic batch, height and width (frames and channels fixed),
    --shape T C H W traces at its size, --verify compares at the test
    clips' size and a second one, and the file runs at other batches and
    sizes, down to the backbone's smallest input."""
    import onnx
    import onnxruntime as ort

    from sdt3_mm.deployment import export_module
    out, log = _export(checkpoints, 'events',
                       ('--shape', '4', '2', '40', '48'))
    assert ('traced at (40, 48), clips of 4 frames of 2 channels; input '
            'axes [batch, 4, 2, height, width]') in log, log
    dims = onnx.load(out).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value
            for d in dims] == ['batch', 4, 2, 'height', 'width']
    # the test clips are 32 x 32 frames; the second size 64 x 96
    sizes = set(re.findall(r'at (\d+x\d+): max abs difference', log))
    assert sizes == {'32x32', '64x96'}, log
    assert 'verified' in log
    calls = re.findall(r'\((\d+) of (\d+) neuron calls compared\)', log)
    assert len(calls) == 4 and all(a == b != '0' for a, b in calls), log

    model = _model('events', checkpoints[1]['events'])
    module, _ = export_module(model, 'mmpretrain')
    session = ort.InferenceSession(out, providers=['CPUExecutionProvider'])
    torch.manual_seed(1)
    smallest = model.backbone.min_input_size
    for batch, size in [(3, (56, 24)), (1, (smallest, smallest))]:
        x = torch.poisson(torch.full((batch, 4, 2, *size), 0.3))
        with torch.no_grad():
            expected = module(x)
        got, = session.run(None, {'input': x.numpy()})
        assert got.shape == (batch, 6)
        assert np.abs(got - expected.numpy()).max() <= 1e-4, size


def test_example_input_from_shape():
    """--shape: H W for images (the backbone's channels; a clip model
    refuses it, naming T C H W), T C H W for clips."""
    from sdt3_mm.deployment import example_input
    assert example_input(_model('cls'), (64, 48)).shape == (1, 3, 64, 48)
    events = _model('events')
    assert example_input(events, (4, 2, 17, 33)).shape == (1, 4, 2, 17, 33)
    with pytest.raises(
            ValueError,
            match=r'^the model of events\.py takes B x T x C x H x W clips '
            r'.* give --shape T C H W, e\.g\. --shape T 2 32 32 \(T: the '
            r'frames per clip\)$'):
        example_input(events, (32, 32), 'events.py')
    with pytest.raises(
            ValueError, match=r'takes clips of 2 channels .*, not 3$'):
        example_input(events, (4, 3, 32, 32))
    with pytest.raises(ValueError, match=r'--shape takes H W .* got 32$'):
        example_input(events, (32, ))
    # onnx_inference runs image files: not for a clip model
    from sdt3_mm.deployment import onnx_inference
    with pytest.raises(
            ValueError,
            match=r'events\.py: the model takes N x '
            r'T x C x H x W clips .* not an image such as x\.png'):
        onnx_inference('events.onnx', osp.join(ROOT, CONFIGS['events']),
                       'x.png')


def test_benchmark_onnx_times_clips():
    """tools/deployment/benchmark_onnx.py --shape T C H W on the event demo
    (random weights): eager, BN-folded and onnxruntime runs of 1 x 4 x 2 x
    32 x 32 clips (only that they run; no time is asserted)."""
    tool = osp.join(ROOT, 'tools/deployment/benchmark_onnx.py')
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    result = subprocess.run([
        sys.executable, tool,
        osp.join(ROOT, CONFIGS['events']), '--shape', '4', '2', '32', '32',
        '--repeats', '1', '--warmup', '0'
    ],
                            cwd=ROOT,
                            env=env,
                            capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'batch 1 at 32 x 32 (clips of 4 frames of 2 channels)' in \
        result.stdout, result.stdout
    for variant in ('eager', 'eager, BN folded', 'onnxruntime fp32'):
        assert re.search(rf'1 thread\(s\)  {variant} +[0-9.]+ ms',
                         result.stdout), result.stdout
