"""Standard tracers and exporters on our networks: torch.jit.trace,
torch.export with dynamic height and width, torch.onnx.export (default
exporter and dynamo=False) run by onnxruntime at the export size and at
sizes it never saw, on images and on B x T x C x H x W clips, down to the
backbones' smallest input."""
import os.path as osp
import warnings

import numpy as np
import pytest
import torch
from mmengine.config import Config
from torch.export import Dim

from sdt3_mm.models import ESpikeFormer, MetaSpikeFormer

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
EXPORT_SIZE = (64, 64)
# Sizes other than the export size. PyTorch's export specialises sizes of
# 1, so dynamic sides start at 17 pixels (a 16-pixel side is a 1 x 1 tap):
# the backbones' min_input_size, which they also check in eager mode.
OTHER_SIZES = [(96, 80), (48, 112)]
MIN_SIZE = 17


class Classifier(torch.nn.Module):
    """The classification demo's ImageClassifier, logits only."""

    def __init__(self):
        super().__init__()
        from mmengine.registry import DefaultScope
        from mmpretrain.registry import MODELS
        cfg = Config.fromfile(
            osp.join(ROOT, 'configs/demo/e-spikeformer-t_shapes-cls.py'))
        # the head's loss is looked up in the current scope, which a test
        # before on the same worker may have left as another library's
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            self.model = MODELS.build(cfg.model)

    def forward(self, x):
        return self.model(x, mode='tensor')


BUILDS = {
    'base':
    lambda: ESpikeFormer(arch='t', out_indices=(2, 3, 4)),
    'large':
    lambda: ESpikeFormer(
        arch=dict(
            family='large', embed_dims=[32, 64, 128], depth=2, rep_conv=True),
        out_indices=(2, 3)),
    'meta':
    lambda: MetaSpikeFormer(
        arch=dict(family='meta', embed_dims=[16, 32, 64, 64]),
        T=2,
        out_indices=(3, 4)),
    'classifier':
    Classifier,
}


def _model(name):
    torch.manual_seed(0)
    model = BUILDS[name]()
    # Running statistics away from their defaults, so that BN matters.
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2)
    return model.eval()


def _outputs(model, x):
    with torch.no_grad():
        out = model(x)
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _inputs(size, batch=2):
    return torch.randn(batch, 3, *size) * 2


@pytest.mark.parametrize('name', sorted(BUILDS))
def test_jit_trace_in_both_modes(name):
    model = _model(name)
    x = _inputs(EXPORT_SIZE)
    with torch.no_grad():
        traced = torch.jit.trace(model, x)
    for size in OTHER_SIZES:
        x = _inputs(size, batch=3)
        for a, b in zip(_outputs(traced, x), _outputs(model, x)):
            assert torch.equal(a, b)
    # In training mode the trace check (a second trace, without grad)
    # finds the same graph.
    torch.jit.trace(model.train(), _inputs(EXPORT_SIZE), check_trace=True)


def _backbone(model):
    return model.model.backbone if isinstance(model, Classifier) else model


@pytest.mark.parametrize('name', sorted(BUILDS))
def test_torch_export_with_dynamic_height_and_width(name):
    """Sides from the backbone's min_input_size: the program runs at
    exactly that size (a batch of one too), like the eager model; one pixel
    less is refused in eager mode, as the program cannot take it."""
    model = _model(name)
    smallest = _backbone(model).min_input_size
    assert smallest == MIN_SIZE
    shapes = ({
        0: Dim('batch', max=256),
        2: Dim('height', min=smallest, max=4096),
        3: Dim('width', min=smallest, max=4096)
    }, )
    program = torch.export.export(
        model, (_inputs(EXPORT_SIZE), ), dynamic_shapes=shapes)
    exported = program.module()
    cases = [(size, 3) for size in OTHER_SIZES]
    cases += [((smallest, smallest), 1), ((smallest, 40), 2)]
    for size, batch in cases:
        x = _inputs(size, batch)
        for a, b in zip(_outputs(exported, x), _outputs(model, x)):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match='smaller than the smallest'):
        model(_inputs((smallest - 1, 40)))


@pytest.mark.parametrize('dynamo', [True, False])
@pytest.mark.parametrize('name', sorted(BUILDS))
def test_onnx_export_runs_in_onnxruntime_at_other_sizes(
        name, dynamo, tmp_path):
    ort = pytest.importorskip('onnxruntime')
    model = _model(name)
    path = str(tmp_path / f'{name}.onnx')
    x = _inputs(EXPORT_SIZE)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        if dynamo:
            shapes = ({
                0: Dim('batch', max=256),
                2: Dim('height', min=MIN_SIZE, max=4096),
                3: Dim('width', min=MIN_SIZE, max=4096)
            }, )
            torch.onnx.export(
                model, (x, ), path, dynamic_shapes=shapes, verbose=False)
        else:
            torch.onnx.export(
                model, (x, ),
                path,
                input_names=['input'],
                dynamic_axes={'input': {
                    0: 'batch',
                    2: 'height',
                    3: 'width'
                }},
                dynamo=False)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    input_name = session.get_inputs()[0].name
    for size in [EXPORT_SIZE] + OTHER_SIZES:
        x = _inputs(size, batch=3)
        expected = _outputs(model, x)
        got = session.run(None, {input_name: x.numpy()})
        assert len(got) == len(expected)
        for a, b in zip(got, expected):
            assert a.shape == tuple(b.shape)
            assert np.abs(a - b.numpy()).max() <= 1e-5, (name, size)


def test_export_below_the_smallest_input_is_refused_by_torch():
    """Why the smallest input is 17, not the total stride 16: the exporter
    itself refuses one pixel less (its guard ceil(H / 16) != 1)."""
    torch.manual_seed(0)
    model = ESpikeFormer(
        arch=dict(family='base', embed_dims=[8, 16, 16, 16])).eval()
    below = model.min_input_size - 1
    assert below == model.total_stride
    shapes = ({
        2: Dim('height', min=below, max=4096),
        3: Dim('width', min=below, max=4096)
    }, )
    with pytest.raises(Exception, match=r'Constraints violated'):
        torch.export.export(
            model, (_inputs(EXPORT_SIZE), ), dynamic_shapes=shapes)


CLIPS = {
    # event frames: ON / OFF channels, stateless SFA neurons over 4 frames
    'base':
    lambda: ESpikeFormer(arch='t', in_channels=2, out_indices=(2, 4)),
    # the frames are the LIF neurons' time steps
    'meta':
    lambda: MetaSpikeFormer(
        arch=dict(family='meta', embed_dims=[16, 32, 64, 64]),
        T=2,
        in_channels=2,
        out_indices=(3, 4)),
}


@pytest.mark.parametrize('name', sorted(CLIPS))
def test_clips_export_with_dynamic_batch_height_and_width(name, tmp_path):
    """B x T x C x H x W clips: the ONNX file has dynamic batch, height and
    width (T and C fixed by the model) and runs in onnxruntime at other
    batches and sizes, down to the smallest input."""
    ort = pytest.importorskip('onnxruntime')
    import onnx

    from sdt3_mm.deployment import export_onnx
    torch.manual_seed(0)
    model = CLIPS[name]()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2)
    model.eval()
    frames = 4 if name == 'base' else 2

    def clips(size, batch):
        return torch.randn(batch, frames, 2, *size) * 2

    path = str(tmp_path / f'{name}.onnx')
    names = export_onnx(model, clips(EXPORT_SIZE, 2), path, ['feat'])
    dims = onnx.load(path).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value
            for d in dims] == ['batch', frames, 2, 'height', 'width']
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    for size, batch in [((48, 112), 3), ((MIN_SIZE, MIN_SIZE), 1)]:
        x = clips(size, batch)
        expected = _outputs(model, x)
        got = session.run(None, {'input': x.numpy()})
        assert len(got) == len(expected) == len(names)
        for a, b in zip(got, expected):
            assert a.shape == tuple(b.shape)
            assert np.abs(a - b.numpy()).max() <= 1e-5, (name, size)
