"""Export OpenMMLab models made of our modules to ONNX and check the file
with onnxruntime.

What is exported depends on the config's ``default_scope``:

* ``mmpretrain`` (``ImageClassifier``): backbone, neck and head, followed
  by a softmax. Output ``scores``, ``(N, num_classes)``.
* ``mmseg`` (``EncoderDecoder``): ``model(inputs, mode='tensor')`` (the
  decode head's logits at its own stride), resized bilinearly (with the
  decode head's ``align_corners``) to the input size. Output
  ``seg_logits``, ``(N, num_classes, H, W)``.
* ``mmdet`` (any detector with ``extract_feat``): backbone plus neck
  only. Outputs ``feat0``, ``feat1``, ... (one per FPN level). The RoI
  heads of a two-stage detector (mmcv's RoIAlign, batched NMS, a variable
  number of boxes per image) are not exported.

The graph's input ``input`` is a batch of *normalised* images, float32
``(N, C, H, W)`` (``C = 3`` for RGB), as the model's data preprocessor
hands them to the model: channels converted to RGB where the config asks
(``to_rgb`` / ``bgr_to_rgb``), ``(pixel - mean) / std``, padded as the
preprocessor pads. Normalisation is the caller's job;
:func:`preprocess_image` does it in numpy from the config for one image.
Batch, height and width are dynamic axes; heights and widths must be
multiples of the model's largest stride (16 for a classifier or
segmentor, 32 for the detection demo's FPN), as the preprocessors pad
them, and at least the backbone's ``min_input_size`` (17: its total
stride plus one, see :class:`~sdt3_mm.models.backbones.SpikingBackbone`).

A clip model (event frames, video: a config whose data preprocessor is a
``FramesDataPreprocessor``) takes ``(N, T, C, H, W)`` clips instead, as
that preprocessor hands them over; batch, height and width are dynamic,
the frames ``T`` and channels ``C`` fixed by the model (its backbone's
``in_channels``; ``time_steps`` where its neurons run over time).
"""
import inspect
import os.path as osp
import re
import warnings
from typing import NamedTuple

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner, load_checkpoint
from torch import nn

from sdt3_mm.reliability import safe_checkpoint_loading
from .onnx_graph import remove_straight_through

SCOPES = ('mmpretrain', 'mmseg', 'mmdet')


class ClassifierExport(nn.Module):
    """Normalised images to class scores (softmax over the head's logits).

    Args:
        model (nn.Module): An mmpretrain classifier whose
            ``forward(inputs, mode='tensor')`` returns the logits.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, inputs):
        logits = self.model(inputs, mode='tensor')
        if isinstance(logits, (tuple, list)):
            if len(logits) != 1:
                raise RuntimeError(
                    f'{type(self.model).__name__}(mode="tensor") returned '
                    f'{len(logits)} tensors; a classifier with a head '
                    f'returns the logits')
            logits = logits[0]
        return F.softmax(logits, dim=1)


class SegmentorExport(nn.Module):
    """Normalised images to per-pixel logits at the input size.

    Args:
        model (nn.Module): An mmseg segmentor (``EncoderDecoder``).
    """

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.align_corners = getattr(model, 'align_corners', False)

    def forward(self, inputs):
        logits = self.model(inputs, mode='tensor')
        # the last two sides: (N, C, H, W) images or (N, T, C, H, W) clips
        return F.interpolate(
            logits,
            size=inputs.shape[-2:],
            mode='bilinear',
            align_corners=self.align_corners)


class DetectorFeatureExport(nn.Module):
    """Normalised images to the detector's backbone plus neck features.

    Args:
        model (nn.Module): An mmdet detector with ``extract_feat``.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, inputs):
        return tuple(self.model.extract_feat(inputs))


def config_scope(cfg):
    """The library (``default_scope``) of ``cfg``; raises for others."""
    scope = cfg.get('default_scope')
    if scope not in SCOPES:
        raise ValueError(
            f'cannot export a model of scope {scope!r}: the config\'s '
            f'default_scope must be one of {", ".join(SCOPES)}')
    return scope


def load_config(path, cfg_options=None):
    """The config at ``path`` with ``cfg_options`` merged, and its scope.

    Raises:
        FileNotFoundError: If there is no file at ``path``.
        ValueError: If its ``default_scope`` is not one we export.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'config {path} does not exist')
    cfg = Config.fromfile(path)
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    return cfg, config_scope(cfg)


def build_model(cfg, checkpoint=None):
    """Build ``cfg.model`` in evaluation mode and load ``checkpoint``.

    The checkpoint is read weights-only (:func:`safe_checkpoint_loading`)
    and loaded strictly: a missing, unexpected or misshapen key raises.

    Args:
        cfg (Config): The config (its ``default_scope`` is made current).
        checkpoint (str, optional): Checkpoint file.

    Returns:
        nn.Module: The model.
    """
    init_default_scope(config_scope(cfg))
    model_cfg = cfg.model.copy()
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(model_cfg)
    if checkpoint is not None:
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'checkpoint {checkpoint} does not exist')
        with safe_checkpoint_loading():
            load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    return model.eval()


def export_module(model, scope):
    """The module that is exported for a model of ``scope``.

    Args:
        model (nn.Module): The built model.
        scope (str): ``mmpretrain``, ``mmseg`` or ``mmdet``.

    Returns:
        tuple[nn.Module, list[str]]: The wrapper (in evaluation mode) and
        its output names (``['feat']`` for a detector: the tool numbers
        them after one run).
    """
    if scope in ('mmpretrain', 'mmseg'):
        params = inspect.signature(model.forward).parameters
        if 'mode' not in params:
            raise TypeError(
                f'{type(model).__name__}.forward takes no mode, so it has '
                f'no forward(inputs, mode="tensor") to export')
    if scope == 'mmpretrain':
        if not getattr(model, 'with_head', True):
            raise TypeError(f'{type(model).__name__} has no head, so it '
                            f'gives no class scores to export')
        return ClassifierExport(model).eval(), ['scores']
    if scope == 'mmseg':
        return SegmentorExport(model).eval(), ['seg_logits']
    if not hasattr(model, 'extract_feat'):
        raise TypeError(f'{type(model).__name__} has no extract_feat, so '
                        f'its backbone and neck cannot be exported')
    return DetectorFeatureExport(model).eval(), ['feat']


def takes_clips(model):
    """Whether ``model`` takes ``B x T x C x H x W`` clips: its data
    preprocessor is a ``FramesDataPreprocessor`` (event frames, video)."""
    from sdt3_mm.models.data_preprocessors import FramesDataPreprocessor
    return isinstance(
        getattr(model, 'data_preprocessor', None), FramesDataPreprocessor)


def input_channels(model):
    """The channels ``model`` takes: its backbone's ``in_channels`` (3
    for a backbone that does not say)."""
    return int(getattr(getattr(model, 'backbone', None), 'in_channels', 3))


def input_axes(example):
    """The dynamic axes of the graph's input for an ``example`` batch:
    batch, height and width of ``(N, C, H, W)`` images or ``(N, T, C, H,
    W)`` clips (frames and channels are fixed by the model).

    Raises:
        ValueError: For an example of another rank.
    """
    if example.dim() == 4:
        return {0: 'batch', 2: 'height', 3: 'width'}
    if example.dim() == 5:
        return {0: 'batch', 3: 'height', 4: 'width'}
    raise ValueError(f'the example input must be N x C x H x W images or '
                     f'N x T x C x H x W clips, got shape '
                     f'{tuple(example.shape)}')


def example_input(model, shape, config='the config'):
    """A random example batch of one for ``model`` from ``--shape``.

    Args:
        model (nn.Module): The built model.
        shape (Sequence[int]): ``(H, W)`` for an image model, an
            ``(N, C, H, W)`` example with the backbone's channels
            (:func:`input_channels`); ``(T, C, H, W)`` for clips, an
            ``(N, T, C, H, W)`` example (any model whose backbone takes
            frames; a clip model, see :func:`takes_clips`, needs it).
        config (str): The config's path, for the messages.

    Returns:
        Tensor: ``(1, C, H, W)`` or ``(1, T, C, H, W)``, standard normal.

    Raises:
        ValueError: For another number of sizes, a size below 1, ``(H,
            W)`` for a clip model, or a ``C`` other than the model's.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 4) or min(shape) < 1:
        raise ValueError(f'--shape takes H W (images) or T C H W (clips), '
                         f'positive sizes; got {" ".join(map(str, shape))}')
    channels = input_channels(model)
    if len(shape) == 2:
        if takes_clips(model):
            # a backbone whose neurons run over time takes that many frames
            steps = getattr(getattr(model, 'backbone', None), 'time_steps',
                            1)
            frames = steps if steps > 1 else 'T'
            raise ValueError(
                f'the model of {config} takes B x T x C x H x W clips (its '
                f'data preprocessor is a FramesDataPreprocessor): give '
                f'--shape T C H W, e.g. --shape {frames} {channels} '
                f'{shape[0]} {shape[1]} (T: the frames per clip)')
        return torch.randn(1, channels, *shape)
    if shape[1] != channels:
        raise ValueError(
            f'--shape {" ".join(map(str, shape))}: the model of {config} '
            f'takes clips of {channels} channels (its backbone\'s '
            f'in_channels), not {shape[1]}')
    return torch.randn(1, *shape)


def _as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def export_onnx(module, example, path, output_names, opset=None):
    """Export ``module`` at ``example`` with dynamic batch, height, width
    (:func:`input_axes`).

    Uses the TorchScript-based exporter (``dynamo=False``) with
    ``dynamic_axes``, as tests/test_deployment/test_export.py checks on
    our backbones, then drops the neurons' straight-through sums
    (:func:`remove_straight_through`: the same values, two element-wise
    passes fewer per neuron).

    Args:
        module (nn.Module): The export wrapper.
        example (Tensor): A normalised ``(N, C, H, W)`` batch, or
            ``(N, T, C, H, W)`` clips.
        path (str): The ``.onnx`` file to write.
        output_names (list[str]): Names of the outputs; a single name for
            several outputs is numbered (``feat0``, ``feat1``...).
        opset (int, optional): ONNX opset; torch's default when None.

    Returns:
        list[str]: The output names in the file.
    """
    with torch.no_grad():
        outputs = _as_list(module(example))
    if len(output_names) != len(outputs):
        output_names = [f'{output_names[0]}{i}' for i in range(len(outputs))]
    dynamic_axes = {'input': input_axes(example)}
    for name, out in zip(output_names, outputs):
        axes = {0: 'batch'}
        # maps (N, C, h, w), or (N, T, C, h, w) per frame: the last two
        if out.dim() in (4, 5):
            axes.update({
                out.dim() - 2: f'{name}_height',
                out.dim() - 1: f'{name}_width'
            })
        dynamic_axes[name] = axes
    kwargs = dict(opset_version=opset) if opset is not None else {}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(
            module, (example, ),
            path,
            input_names=['input'],
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            dynamo=False,
            **kwargs)
    model = onnx.load(path)
    remove_straight_through(model)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return output_names


def ort_session(path, threads=None):
    """An onnxruntime CPU session on ``path``, with ``threads`` intra-op
    threads (onnxruntime's default, one per core, when None)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(
        path, options, providers=['CPUExecutionProvider'])


def config_batches(model, cfg, num_images=4, batch_size=2, split='test'):
    """Normalised batches of the config's images, through the test
    pipeline and the model's data preprocessor.

    Args:
        split (str): ``'test'``: the test set; ``'train'``: the training
            set's images (in order, with the test pipeline: no
            augmentation), e.g. to calibrate a quantisation without
            looking at the test set.
    """
    if split not in ('test', 'train'):
        raise ValueError(f"split must be 'test' or 'train', got {split!r}")
    loader_cfg = cfg.test_dataloader.copy()
    if split == 'train':
        dataset = cfg.train_dataloader.dataset.copy()
        dataset.pipeline = cfg.test_dataloader.dataset.pipeline
        loader_cfg.dataset = dataset
    loader_cfg.update(
        batch_size=batch_size, num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg)
    seen = 0
    for data in loader:
        if seen >= num_images:
            break
        inputs = model.data_preprocessor(data, False)['inputs']
        seen += inputs.shape[0]
        yield inputs


def second_size(size, divisor=32):
    """A size other than ``size``: each side grown by ``divisor`` and
    ``2 * divisor``, so the largest strides still divide it."""
    return size[0] + divisor, size[1] + 2 * divisor


def resize_batch(inputs, size):
    """``(N, C, H, W)`` images or ``(N, T, C, H, W)`` clips resized
    bilinearly to ``size`` (height, width), every frame alike."""
    flat = inputs.flatten(0, inputs.dim() - 4)
    resized = F.interpolate(
        flat, size=tuple(size), mode='bilinear', align_corners=False)
    return resized.reshape(*inputs.shape[:-2], *resized.shape[-2:])


class Agreement(NamedTuple):
    """onnxruntime against PyTorch on one batch.

    Attributes:
        size (tuple[int, int]): Input height and width (of each frame of
            a clip).
        max_difference (float): Largest absolute difference of the
            outputs (``inf`` if their number or shapes differ).
        spikes (int): Spike counts compared (elements of every neuron call
            found in the file).
        spike_mismatches (int): Of these, how many differ.
        neuron_calls (int): Neuron calls in PyTorch's forward.
        neuron_calls_compared (int): Of these, how many were found in the
            file and compared.
    """

    size: tuple
    max_difference: float
    spikes: int
    spike_mismatches: int
    neuron_calls: int = 0
    neuron_calls_compared: int = 0


def _scope_of(node_name):
    """``/model/backbone/stages.0.0/neuron/Round`` to the module path
    ``model.backbone.stages.0.0.neuron``."""
    return node_name.rsplit('/', 1)[0].strip('/').replace('/', '.')


def _neuron_call_of(node_name, neuron_paths):
    """The neuron call (module path, call index) a node belongs to, or
    None.

    The exporter writes a node's scope as the names of the modules called
    on the way (``/model/backbone/stages.0.0/neuron/Round``), a module's
    second and later calls as ``name_1``, ``name_2``..., and leaves out a
    module entered other than by a call (MMSegmentation calls
    ``decode_head.forward``), naming its children from there. The call is
    the one neuron whose path ends with the scope's shortest suffix that
    only one neuron's path ends with.
    """
    levels = node_name.strip('/').split('/')[:-1]
    if not levels:
        return None
    last = levels[-1]
    numbered = re.fullmatch(r'(.+)_(\d+)', last)
    for name, call in [(last, 0)] + ([(numbered.group(1),
                                       int(numbered.group(2)))]
                                     if numbered else []):
        for depth in range(1, len(levels) + 1):
            suffix = '.'.join(levels[-depth:-1] + [name])
            matches = [
                path for path in neuron_paths
                if path == suffix or path.endswith('.' + suffix)
            ]
            if len(matches) == 1:
                return matches[0], call
            if not matches:
                break
    return None


def neuron_outputs(model, neuron_paths):
    """Where each neuron call's output is in an exported graph.

    Generic over neuron types: a call's nodes are those under its module's
    scope, and its output is the last of their values that a node outside
    the scope (or the graph's output) reads.

    Args:
        model (onnx.ModelProto): The exported model.
        neuron_paths (list[str]): Module paths of the exported module's
            :class:`~sdt3_mm.models.neurons.spiking_neuron.SpikingNeuron`
            modules.

    Returns:
        dict: ``(path, call index)`` to the name of the output value.
    """
    scopes = {}
    for node in model.graph.node:
        scopes.setdefault(_scope_of(node.name), []).append(node)
    read_from = {}
    for node in model.graph.node:
        scope = _scope_of(node.name)
        for value in node.input:
            read_from.setdefault(value, set()).add(scope)
    graph_outputs = {out.name for out in model.graph.output}
    found = {}
    for scope, nodes in scopes.items():
        call = _neuron_call_of(nodes[0].name, neuron_paths)
        if call is None:
            continue
        outputs = [
            value for node in nodes for value in node.output
            if value in graph_outputs or read_from.get(value, set()) -
            {scope}
        ]
        if outputs:
            found[call] = outputs[-1]
    return found


def _session_with_neuron_outputs(path, neuron_paths):
    """A session on ``path`` that also returns every neuron call's output
    found in it, and the calls in the order it returns them."""
    model = onnx.load(path)
    found = neuron_outputs(model, neuron_paths)
    outputs = {out.name for out in model.graph.output}
    for value in found.values():
        if value not in outputs:
            model.graph.output.append(
                onnx.helper.make_tensor_value_info(value,
                                                   onnx.TensorProto.FLOAT,
                                                   None))
    import onnxruntime as ort
    session = ort.InferenceSession(
        model.SerializeToString(), providers=['CPUExecutionProvider'])
    names = [out.name for out in session.get_outputs()]
    calls = [(call, names.index(value)) for call, value in found.items()]
    return session, calls


def _torch_neuron_calls(module, inputs):
    """The outputs of ``module`` and, per neuron call ``(path, call
    index)``, the neuron and its output."""
    from sdt3_mm.models.neurons.spiking_neuron import spiking_neurons
    calls, handles, seen = {}, [], {}
    for name, neuron in spiking_neurons(module):

        def record(mod, args, out, name=name):
            index = seen[name] = seen.get(name, -1) + 1
            calls[(name, index)] = (mod, out)

        handles.append(neuron.register_forward_hook(record))
    try:
        with torch.no_grad():
            outputs = _as_list(module(inputs))
    finally:
        for handle in handles:
            handle.remove()
    return outputs, calls


def agreement(module, session, calls, inputs):
    """:class:`Agreement` of ``session`` (from
    :func:`_session_with_neuron_outputs`) with ``module`` on ``inputs``.

    Spike counts are read on both sides by the neuron's own
    :meth:`~sdt3_mm.models.neurons.spiking_neuron.SpikingNeuron.spike_counts`
    (the contract), so every neuron type is compared alike."""
    expected, torch_calls = _torch_neuron_calls(module, inputs)
    got = session.run(None, {session.get_inputs()[0].name: inputs.numpy()})
    size = tuple(inputs.shape[-2:])
    diff = 0.
    for a, b in zip(got[:len(expected)], expected):
        if a.shape != tuple(b.shape):
            diff = float('inf')
            break
        diff = max(diff, float(np.abs(a - b.numpy()).max()))
    spikes = mismatches = compared = 0
    for call, index in calls:
        if call not in torch_calls:
            continue
        neuron, out = torch_calls[call]
        onnx_out = torch.from_numpy(got[index])
        if onnx_out.shape != out.shape:
            continue
        a, b = neuron.spike_counts(onnx_out), neuron.spike_counts(out)
        spikes += a.numel()
        mismatches += int((a != b).sum())
        compared += 1
    return Agreement(size, diff, spikes, mismatches, len(torch_calls),
                     compared)


def verify(module, path, batches):
    """onnxruntime against PyTorch on ``batches`` (images or clips) at
    their size and at :func:`second_size` (the batch resized bilinearly,
    :func:`resize_batch`): the outputs and every neuron's spike counts.

    Two runtimes sum a convolution in different orders, so a membrane
    potential within about 1e-6 of a rounding tie can fire differently;
    such a flip changes the outputs by up to one spike's weight. The spike
    counts tell these apart from an export that computes something else.

    Returns:
        list[Agreement]: Per batch and size.
    """
    from sdt3_mm.models.neurons.spiking_neuron import spiking_neurons
    session, calls = _session_with_neuron_outputs(
        path, [name for name, _ in spiking_neurons(module)])
    results = []
    for inputs in batches:
        resized = resize_batch(inputs, second_size(inputs.shape[-2:]))
        for x in (inputs, resized):
            results.append(agreement(module, session, calls, x))
    return results


def verification_verdict(results, atol=1e-4, max_spike_flips=1e-5):
    """Whether :func:`verify`'s results pass, and why.

    They pass when every output is within ``atol`` of PyTorch's, or when
    the differences come with spikes that fire differently, at most a
    ``max_spike_flips`` fraction of all compared (rounding ties, see
    :func:`verify`). A difference with every spike equal, or with more
    flips, fails.

    Args:
        results (list[Agreement]): What :func:`verify` returned.
        atol (float): Largest absolute output difference accepted as is.
        max_spike_flips (float): Largest fraction of differing spikes that
            explains a larger difference.

    Returns:
        tuple[bool, str]: The verdict and a line saying why.
    """
    worst = max(result.max_difference for result in results)
    spikes = sum(result.spikes for result in results)
    flips = sum(result.spike_mismatches for result in results)
    calls = sum(result.neuron_calls for result in results)
    compared = sum(result.neuron_calls_compared for result in results)
    if worst <= atol:
        return True, (f'verified: max abs difference {worst:.3g} <= atol '
                      f'{atol:g}')
    # Flips explain a difference only when every neuron call was compared.
    if 0 < flips <= max_spike_flips * spikes and compared == calls:
        return True, (f'verified up to rounding ties: {flips} of {spikes} '
                      f'spikes fire differently (<= {max_spike_flips:g} of '
                      f'them), which moves the outputs by up to '
                      f'{worst:.3g}; every other spike is equal')
    why = f'{flips} of {spikes} spikes differ' if spikes else \
        'spikes not compared'
    if compared < calls:
        why += (f'; {calls - compared} of {calls} neuron calls not found in '
                f'the file')
    return False, (f'verification failed: max abs difference {worst:.3g} > '
                   f'atol {atol:g} ({why})')


def _preprocessor_cfg(cfg):
    pre = cfg.model.get('data_preprocessor') or cfg.get(
        'data_preprocessor') or {}
    mean = np.array(pre.get('mean', [0., 0., 0.]), dtype=np.float32)
    std = np.array(pre.get('std', [1., 1., 1.]), dtype=np.float32)
    to_rgb = bool(pre.get('to_rgb', False) or pre.get('bgr_to_rgb', False))
    return mean, std, to_rgb


def preprocess_image(cfg, image, divisor=32):
    """One image file to the graph's input, in numpy.

    Reads the image (BGR, as ``LoadImageFromFile``), converts it to RGB
    when the config's data preprocessor does, normalises it with its mean
    and std and pads its bottom and right with zeros to a multiple of
    ``divisor``. No resize: the image is used at its own size.

    Returns:
        tuple[np.ndarray, tuple[int, int]]: ``(1, 3, H', W')`` float32
        input and the image's own ``(H, W)``.
    """
    import mmcv
    img = mmcv.imread(image, channel_order='bgr')
    if img is None:
        raise FileNotFoundError(f'cannot read image {image}')
    mean, std, to_rgb = _preprocessor_cfg(cfg)
    if to_rgb:
        img = img[..., ::-1]
    x = (img.astype(np.float32) - mean) / std
    h, w = x.shape[:2]
    ph, pw = -h % divisor, -w % divisor
    x = np.pad(x, ((0, ph), (0, pw), (0, 0)))
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None]), (h, w)


def onnx_inference(onnx_file, cfg, image):
    """Run an exported classifier or segmentor on one image file.

    Args:
        onnx_file (str | onnxruntime.InferenceSession): File written by
            :func:`export_onnx`, or a session on it (to run many images).
        cfg (Config | str): The model's config (for the normalisation and
            the scope).
        image (str): Image file.

    Raises:
        ValueError: For a clip model's config (event frames, video): it
            takes no image.

    Returns:
        np.ndarray: Class scores ``(num_classes,)`` for a classifier, the
        label map ``(H, W)`` (int64, the image's own size) for a
        segmentor, the list of feature maps for a detector.
    """
    if isinstance(cfg, str):
        cfg = Config.fromfile(cfg)
    scope = config_scope(cfg)
    pre = cfg.model.get('data_preprocessor') or cfg.get(
        'data_preprocessor') or {}
    if str(pre.get('type', '')).endswith('FramesDataPreprocessor'):
        raise ValueError(
            f'{cfg.filename or "the config"}: the model takes N x T x C x H '
            f'x W clips (its data preprocessor is a FramesDataPreprocessor), '
            f'not an image such as {image}; run the ONNX file on clips as '
            f'the config\'s test pipeline makes them')
    x, (h, w) = preprocess_image(cfg, image)
    session = ort_session(onnx_file) if isinstance(onnx_file,
                                                   str) else onnx_file
    outputs = session.run(None, {session.get_inputs()[0].name: x})
    if scope == 'mmpretrain':
        return outputs[0][0]
    if scope == 'mmseg':
        return outputs[0][0, :, :h, :w].argmax(0)
    return outputs


def describe_prediction(cfg, result, label_map=None):
    """Report what :func:`onnx_inference` returned, as a user reads it.

    A classifier's top-5 classes (names from the test set's ``metainfo``
    when the config has them) with their scores; a segmentor's label map
    written as a PNG to ``label_map``; a detector's feature shapes.

    Args:
        cfg (Config): The model's config.
        result: What :func:`onnx_inference` returned.
        label_map (str, optional): PNG file for a segmentor's label map
            (required for a segmentor).

    Returns:
        list[str]: Lines to print.
    """
    scope = config_scope(cfg)
    if scope == 'mmpretrain':
        dataset = cfg.get('test_dataloader', {}).get('dataset', {})
        classes = (dataset.get('metainfo') or {}).get('classes')
        lines = []
        for label in np.argsort(-result)[:5]:
            name = classes[label] if classes else str(label)
            lines.append(f'{name}: {result[label]:.4f}')
        return lines
    if scope == 'mmseg':
        if label_map is None:
            raise ValueError('a segmentor\'s label map needs a PNG path')
        import mmcv
        if result.max() > 255:
            raise ValueError(f'{result.max() + 1} classes do not fit the '
                             f'8-bit PNG of {label_map}')
        mmcv.imwrite(result.astype(np.uint8), label_map)
        counts = np.bincount(result.ravel())
        return [
            f'label map {result.shape[0]}x{result.shape[1]} written '
            f'to {label_map}; pixels per class: ' +
            ', '.join(f'{c}: {n}' for c, n in enumerate(counts) if n)
        ]
    return [
        'a detector\'s backbone and neck give features, no labels: ' +
        ', '.join(str(f.shape) for f in result)
    ]
