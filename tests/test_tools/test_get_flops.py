"""The FLOP counters shipped in the MMPretrain, MMDetection and
MMSegmentation wheels (``.mim/tools/analysis_tools/get_flops.py``, all built
on ``mmengine.analysis.get_model_complexity_info``, a TorchScript-trace
counter) on our demo configs.

Each tool runs as a user runs it (a fresh process from the repository
root) and must print a FLOPs number, and that number must equal a count made
here independently: forward hooks on every conv, linear and batch norm, and
a torch-function mode for the matmuls and resizes, with mmengine's
conventions (a multiply-accumulate is one FLOP; an eval-mode affine BN is
two per element; nearest / bilinear resizing one / four per output
element). They must agree to the printed precision (the tools print three
decimals of K/M/G), so a counter that silently skips a layer (an op the
trace cannot see, such as a custom autograd function) fails.

MMSegmentation 1.2.2's tool passes both ``input_shape`` and ``inputs`` to
``get_model_complexity_info``, which refuses that for every config, stock
ones included; our segmentor is tested through the same call with
``input_shape=None`` (in process, and as the tool itself with only that
argument dropped).
"""
import math
import os.path as osp
import re
import subprocess
import sys
from functools import partial

import mmdet
import mmpretrain
import mmseg
import pytest
import torch
import torch.nn.functional as F
from tool_runner import ROOT, run_tool
from torch import nn
from torch.overrides import TorchFunctionMode

DEMO = osp.join(ROOT, 'configs', 'demo')
CLS_CONFIG = osp.join(DEMO, 'e-spikeformer-t_shapes-cls.py')
META_CONFIG = osp.join(DEMO, 'meta-spikeformer_t4_shapes-cls.py')
DET_CONFIG = osp.join(DEMO, 'mask-rcnn_e-spikeformer-t_spike-fpn_shapes.py')
SEG_CONFIG = osp.join(DEMO, 'fpn_e-spikeformer-t_spike-fpn_shapes-seg.py')


def _tool(package):
    return osp.join(
        osp.dirname(package.__file__), '.mim', 'tools', 'analysis_tools',
        'get_flops.py')


MMPRETRAIN_TOOL = _tool(mmpretrain)
MMDET_TOOL = _tool(mmdet)
MMSEG_TOOL = _tool(mmseg)

_UNITS = dict(K=1e3, M=1e6, G=1e9, T=1e12, P=1e15)
# mmcv's ops that the trace sees as Python ops in the detector (NMS and
# RoIAlign count no FLOPs in mmengine). Any other Python op in an
# evaluation-mode trace would be one of ours hiding its work.
_MMCV_PYTHON_OPS = {'prim::PythonOp.NMSop', 'prim::PythonOp.RoIAlignFunction'}


# --------------------------------------------------------------------------
# The independent count
# --------------------------------------------------------------------------
class _FunctionCounter(TorchFunctionMode):
    """Counts the matmuls and resizes that no module hook sees."""

    def __init__(self, counts):
        super().__init__()
        self.counts = counts

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, '__name__', '')
        if name in ('matmul', '__matmul__', 'mm', 'bmm'):
            a, b = args[0], args[1]
            self.counts['matmul'] += a.numel() * b.shape[-1]
        elif func is F.interpolate:
            mode = kwargs.get('mode', args[3] if len(args) > 3 else 'nearest')
            per_output = dict(nearest=1, bilinear=4)[mode]
            self.counts['resize'] += out.numel() * per_output
        elif func is F.adaptive_avg_pool2d:
            self.counts['pool'] += args[0].numel()
        return out


def reference_flops(model, run):
    """FLOPs of ``run()`` (a forward of ``model``), counted independently.

    Args:
        model (nn.Module): The model ``run`` calls.
        run (callable): Runs the forward to count.

    Returns:
        dict: FLOPs per kind (``conv``, ``linear``, ``norm``, ``matmul``,
        ``resize``, ``pool``).
    """
    counts = dict(conv=0, linear=0, norm=0, matmul=0, resize=0, pool=0)

    def hook(module, inputs, output):
        x = inputs[0]
        kernel = math.prod(getattr(module, 'kernel_size', ()))
        if isinstance(module, nn.modules.conv._ConvTransposeNd):
            counts['conv'] += (
                x.numel() * module.out_channels // module.groups * kernel)
        elif isinstance(module, nn.modules.conv._ConvNd):
            counts['conv'] += (
                output.numel() * module.in_channels // module.groups * kernel)
        elif isinstance(module, nn.Linear):
            counts['linear'] += output.numel() * module.in_features
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            assert not module.training, 'counts are for evaluation mode'
            counts['norm'] += x.numel() * (2 if module.affine else 1)

    kinds = (nn.modules.conv._ConvNd, nn.Linear,
             nn.modules.batchnorm._BatchNorm)
    handles = [
        m.register_forward_hook(hook) for m in model.modules()
        if isinstance(m, kinds)
    ]
    try:
        with torch.no_grad(), _FunctionCounter(counts):
            run()
    finally:
        for handle in handles:
            handle.remove()
    return counts


def test_reference_count_on_a_small_model():
    """The independent count itself, against a count by hand."""

    class Small(nn.Module):

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
            self.bn = nn.BatchNorm2d(8)
            self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
            self.fc = nn.Linear(4, 5)

        def forward(self, x):
            x = self.bn(self.dw(self.conv(x)))  # 8 x 6 x 6
            t = x.flatten(2)  # 8 x 36
            x = (t @ t.transpose(1, 2) @ t).view_as(x)
            x = F.interpolate(self.up(x), scale_factor=2)  # 4 x 24 x 24
            return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))

    model = Small().eval()
    counts = reference_flops(model, lambda: model(torch.randn(2, 3, 6, 6)))
    assert counts == dict(
        conv=2 * 8 * 36 * 3 * 9 + 2 * 8 * 36 * 9 + 2 * 8 * 36 * 4 * 4,
        linear=2 * 5 * 4,
        norm=2 * 2 * 8 * 36,
        matmul=2 * (8 * 36 * 8 + 8 * 8 * 36),
        resize=2 * 4 * 24 * 24,
        pool=2 * 4 * 24 * 24)


# --------------------------------------------------------------------------
# Reading the tools' output
# --------------------------------------------------------------------------
def printed_flops(output):
    """The number after ``Flops:`` in a tool's output, and its rounding.

    mmengine prints counts with three decimals of K/M/G/... (trailing
    zeros dropped), so the printed value is within half a unit of the third
    decimal of the true one.
    """
    found = re.findall(r'^Flops: ([0-9.]+)([KMGTP]?)$', output, re.M)
    assert len(found) == 1, output[-3000:]
    value, unit = found[0]
    scale = _UNITS.get(unit, 1)
    return float(value) * scale, 0.0005 * scale


def assert_same_count(output, reference):
    total = sum(reference.values())
    flops, rounding = printed_flops(output)
    assert abs(flops - total) <= rounding + 1, (
        f'the tool printed {flops:.6g} FLOPs, the independent count is '
        f'{total} ({reference})')


def assert_no_opaque_ops(output):
    """No Python op (a custom autograd function) of ours in the trace: the
    counter cannot see inside one and counts it as nothing."""
    ops = set(re.findall(r'Unsupported operator (\S+) encountered', output))
    opaque = {op for op in ops if op.startswith('prim::PythonOp')}
    assert not opaque - _MMCV_PYTHON_OPS, sorted(opaque)


# --------------------------------------------------------------------------
# MMPretrain
# --------------------------------------------------------------------------
def _cls_reference(config, shape):
    """What MMPretrain's tool counts: ``extract_feat`` (the backbone)."""
    model = mmpretrain.get_model(config)
    model.eval()
    return reference_flops(
        model, lambda: model.extract_feat(torch.randn(1, 3, *shape)))


def test_mmpretrain_get_flops_on_the_classification_demo():
    out = run_tool([MMPRETRAIN_TOOL, CLS_CONFIG, '--shape', '64', '64'])
    assert 'Input shape: (3, 64, 64)' in out
    reference = _cls_reference(CLS_CONFIG, (64, 64))
    # Convs carry nearly everything; the attention's two products (q, k
    # and v are spikes, the product has no softmax) and the eval-mode BNs
    # are counted too.
    assert reference['conv'] > 0.9 * sum(reference.values())
    assert reference['matmul'] > 0 and reference['norm'] > 0
    assert_same_count(out, reference)
    assert_no_opaque_ops(out)


def test_mmpretrain_get_flops_on_the_meta_spikeformer_demo():
    result = subprocess.run(
        [sys.executable, MMPRETRAIN_TOOL, META_CONFIG, '--shape', '64', '64'],
        cwd=ROOT,
        capture_output=True,
        text=True)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert 'Input shape: (3, 64, 64)' in out
    assert_same_count(out, _cls_reference(META_CONFIG, (64, 64)))
    assert_no_opaque_ops(out)


def test_meta_spikeformer_count_through_the_tools_call():
    """The tool's own call counts Meta-SpikeFormer completely: LIF neurons
    over T = 4 steps, RepConv and the attention."""
    from mmengine.analysis import get_model_complexity_info
    model = mmpretrain.get_model(META_CONFIG)
    model.eval()
    model.forward = model.extract_feat
    result = get_model_complexity_info(model, (3, 64, 64), show_arch=False)
    reference = reference_flops(model,
                                lambda: model(torch.randn(1, 3, 64, 64)))
    assert result['flops'] == sum(reference.values()), reference


# --------------------------------------------------------------------------
# MMDetection
# --------------------------------------------------------------------------
def _det_settings(data_root):
    """The small validation set the tool loads its image from."""
    return {
        'val_dataloader.dataset.data_root': f'{data_root}/',
        'val_dataloader.dataset.num_train': 4,
        'val_dataloader.dataset.num_val': 2,
        'val_dataloader.num_workers': 0,
        'val_dataloader.persistent_workers': False,
    }


@pytest.fixture(scope='module')
def det_reference(tmp_path_factory):
    """The first validation image and the detector's count on it, as
    MMDetection's tool takes them; writes the small set the tool reads."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    data_root = str(tmp_path_factory.mktemp('get_flops') / 'shapes_det')
    settings = _det_settings(data_root)
    cfg = Config.fromfile(DET_CONFIG)
    cfg.val_dataloader.batch_size = 1
    cfg.merge_from_dict(settings)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    data_batch = next(iter(Runner.build_dataloader(cfg.val_dataloader)))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
    model.eval()
    data = model.data_preprocessor(data_batch)
    model.forward = partial(model.forward, data_samples=data['data_samples'])
    rois = []
    handle = model.roi_head.bbox_head.register_forward_hook(
        lambda module, inputs, output: rois.append(inputs[0].shape[0]))
    reference = reference_flops(model, lambda: model(data['inputs']))
    handle.remove()
    # The RoI heads' share depends on the proposals' number: it is the RPN's
    # max_per_img (300) when at least that many boxes survive NMS. With
    # about 4000 anchors on a 128 x 128 image, NMS per level at IoU 0.7
    # leaves far more than 300 for randomly initialised weights (RPN deltas
    # near zero, boxes near their anchors), so the tool's own unseeded
    # detector counts the same RoIs.
    assert rois == [cfg.model.test_cfg.rpn.max_per_img]
    dense = reference_flops(
        model, lambda: model.rpn_head(model.extract_feat(data['inputs'])))
    options = [f'{key}={value}' for key, value in settings.items()]
    return options, tuple(data['inputs'].shape[-2:]), reference, dense


def test_mmdet_get_flops_on_the_detection_demo(det_reference):
    options, shape, reference, dense = det_reference
    out = run_tool(
        [MMDET_TOOL, DET_CONFIG, '--num-images', '1', '--cfg-options'] +
        options)
    assert f'Input shape: {shape}' in out
    # The RoI heads (spiking FCs on 300 RoIs, the mask head's convs on 100)
    # are counted on top of the backbone, neck and RPN head.
    assert reference['linear'] > 0
    assert sum(reference.values()) > 1.5 * sum(dense.values())
    assert_same_count(out, reference)
    assert_no_opaque_ops(out)


# --------------------------------------------------------------------------
# MMSegmentation
# --------------------------------------------------------------------------
def test_mmseg_get_flops_stock_tool_fails_on_its_own_call():
    """MMSegmentation 1.2.2's tool fails before it reaches any model code:
    it passes ``input_shape`` and ``inputs`` together."""
    result = subprocess.run(
        [sys.executable, MMSEG_TOOL, SEG_CONFIG, '--shape', '64', '64'],
        cwd=ROOT,
        capture_output=True,
        text=True)
    assert result.returncode != 0
    assert ('ValueError: "input_shape" and "inputs" cannot be both set.'
            in result.stderr), result.stderr[-3000:]


def _seg_reference(inputs):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    cfg = Config.fromfile(SEG_CONFIG)
    init_default_scope(cfg.get('scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    model.eval()
    return reference_flops(model, lambda: model(inputs))


def test_mmseg_count_through_the_tools_call():
    """``get_model_complexity_info`` called on the segmentor as
    MMSegmentation's tool calls it, without the ``input_shape`` that
    mmengine refuses next to ``inputs``."""
    from mmengine.analysis import get_model_complexity_info
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample

    cfg = Config.fromfile(SEG_CONFIG)
    init_default_scope(cfg.get('scope', 'mmseg'))
    input_shape = (3, 64, 64)
    model = MODELS.build(cfg.model)
    if hasattr(model, 'auxiliary_head'):
        model.auxiliary_head = None
    model = revert_sync_batchnorm(model)
    meta = dict(ori_shape=input_shape[-2:], pad_shape=input_shape[-2:])
    data = model.data_preprocessor({
        'inputs': [torch.rand(input_shape)],
        'data_samples': [SegDataSample(metainfo=meta)]
    })
    model.eval()
    result = get_model_complexity_info(
        model, None, inputs=data['inputs'], show_table=False, show_arch=False)
    reference = reference_flops(model, lambda: model(data['inputs']))
    # The backbone's attention, the neck's and head's upsampling and the
    # head's final bilinear resize are all in.
    assert reference['matmul'] > 0 and reference['resize'] > 0
    assert result['flops'] == sum(reference.values()), reference


# MMSegmentation's get_flops.py run as it is, but for the one argument:
# mmengine.analysis.get_model_complexity_info is wrapped to drop
# input_shape when inputs are given (the tool imports it from there).
_SEG_TOOL_WITHOUT_ITS_BUG = """
import runpy, sys
import mmengine.analysis as analysis
stock = analysis.get_model_complexity_info
def call(model, input_shape=None, inputs=None, **kwargs):
    if inputs is not None:
        input_shape = None
    return stock(model, input_shape, inputs=inputs, **kwargs)
analysis.get_model_complexity_info = call
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""


def test_mmseg_get_flops_on_the_segmentation_demo_with_its_call_fixed():
    out = run_tool([
        '-c', _SEG_TOOL_WITHOUT_ITS_BUG, MMSEG_TOOL, SEG_CONFIG, '--shape',
        '64', '64'
    ])
    assert 'Input shape: (64, 64)' in out
    # The tool feeds the preprocessed random image (normalised, 64 x 64).
    assert_same_count(out, _seg_reference(torch.rand(1, 3, 64, 64)))
    assert_no_opaque_ops(out)
