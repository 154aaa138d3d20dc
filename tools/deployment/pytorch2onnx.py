"""Export a model of an OpenMMLab config to ONNX, with dynamic batch,
height and width, and optionally check it with onnxruntime.

What is exported (see :mod:`sdt3_mm.deployment.onnx_export`):

* an MMPretrain classifier: normalised images to softmax class scores;
* an MMSegmentation ``EncoderDecoder``: normalised images to per-pixel
  logits at the input size;
* an MMDetection detector: its backbone plus neck (the FPN levels); the
  RoI heads are not exported.

The graph takes images already normalised as the config's data
preprocessor does (RGB where it converts, ``(x - mean) / std``, padded
to a multiple of the largest stride); ``--image`` (and
``onnx_inference.py``) shows how. A clip model (event frames, video: its
data preprocessor is a ``FramesDataPreprocessor``) takes ``N x T x C x H
x W`` clips, with dynamic batch, height and width, ``T`` and ``C`` fixed
by the model. Heights and widths are at least 17 pixels (the backbones'
``min_input_size``, total stride 16 plus one). Its neurons fire
``round(clamp(x, 0, D)) / norm`` (the traced straight-through sums are
removed, same values). ``--int8`` also writes ``<out>_int8.onnx``: int8
weights, every spike exact as uint8 (scale ``1 / norm``), the other
activations calibrated on training images.

Example::

    python tools/deployment/pytorch2onnx.py \
        configs/demo/e-spikeformer-t_shapes-cls.py \
        work_dirs/e-spikeformer-t_shapes-cls/epoch_20.pth \
        --out cls.onnx --verify --fold-bn

    # event clips: 4 frames of ON / OFF counts
    python tools/deployment/pytorch2onnx.py \
        configs/demo/e-spikeformer-t_shapes-events.py \
        work_dirs/e-spikeformer-t_shapes-events/epoch_6.pth \
        --out events.onnx --verify --shape 4 2 32 32

Exit status 1 when ``--verify`` finds a difference above ``--atol`` that
is not explained by a few spikes firing differently: PyTorch and
onnxruntime sum a convolution in different orders, so a membrane
potential within about 1e-6 of a rounding tie can fire one spike more or
fewer, which moves the outputs by that spike's weight (the demo segmentor
at 160 x 192: 1 of 13,048,320 spikes, 0.044). ``--verify`` compares every
neuron's spike counts too and passes when at most ``--max-spike-flips``
of them differ.
"""
import argparse
import os.path as osp
import sys

from mmengine.config import DictAction

import sdt3_mm  # noqa: F401  (registries)
from sdt3_mm.analysis import fold_bn
from sdt3_mm.deployment import (build_model, config_batches,
                                describe_prediction, example_input,
                                export_module, export_onnx, load_config,
                                onnx_inference, quantize_int8,
                                verification_verdict, verify)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export a classifier, segmentor or detector backbone '
        'and neck to ONNX, with dynamic batch, height and width (images '
        'N x C x H x W, or clips N x T x C x H x W for a model whose data '
        'preprocessor is a FramesDataPreprocessor). Heights and widths '
        'must be at least 17 pixels (the backbone\'s min_input_size).')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out', help='ONNX file (default: <config name>.onnx here)')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        metavar='SIZE',
        help='the example the model is traced with: H W for images (the '
        'backbone\'s in_channels channels), T C H W for clips (frames and '
        'channels as the model takes them: required form for a clip '
        'model); H and W at least 17 (default: the first test sample '
        'after the pipeline)')
    parser.add_argument(
        '--opset', type=int, help='ONNX opset (default: torch\'s)')
    parser.add_argument(
        '--fold-bn',
        action='store_true',
        help='fold BatchNorm into the layers before it first')
    parser.add_argument(
        '--verify',
        action='store_true',
        help='compare onnxruntime with PyTorch on the test images at their '
        'pipeline size and at a second size')
    parser.add_argument(
        '--num-images',
        type=int,
        default=4,
        help='test images used by --verify')
    parser.add_argument(
        '--atol',
        type=float,
        default=1e-4,
        help='largest absolute difference --verify accepts')
    parser.add_argument(
        '--max-spike-flips',
        type=float,
        default=1e-5,
        help='beyond --atol, still pass when some spikes, at most this '
        'fraction of all, fire differently (potentials at a rounding tie '
        'that the two runtimes sum to either side)')
    parser.add_argument(
        '--int8',
        action='store_true',
        help='also write <out>_int8.onnx: int8 weights, spikes exact as '
        'uint8, other activations calibrated on training images')
    parser.add_argument(
        '--calibration-images',
        type=int,
        default=64,
        help='training images (test pipeline) that calibrate --int8')
    parser.add_argument(
        '--image',
        help='run the exported classifier (print the top-5) or segmentor '
        '(write the label map PNG to --label-map) on this image')
    parser.add_argument(
        '--label-map', help='PNG file for the segmentor\'s label map')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value (a.b=1, list=[1,2])')
    args = parser.parse_args(argv)
    if args.shape is not None and len(args.shape) not in (2, 4):
        parser.error(f'--shape takes H W (images) or T C H W (clips), got '
                     f'{len(args.shape)} values')
    return args


def _describe(result):
    line = (f'{result.size[0]}x{result.size[1]}: max abs difference '
            f'{result.max_difference:.3g}')
    if result.spikes:
        line += (f', spikes differing {result.spike_mismatches} of '
                 f'{result.spikes}')
    line += (f' ({result.neuron_calls_compared} of {result.neuron_calls} '
             f'neuron calls compared)')
    return line


def _input_shape(path):
    """The input's shape as the file states it (names of dynamic axes)."""
    import onnx
    dims = onnx.load(path).graph.input[0].type.tensor_type.shape.dim
    return '[' + ', '.join(d.dim_param or str(d.dim_value) for d in dims) + ']'


def main(argv=None):
    args = parse_args(argv)
    cfg, scope = load_config(args.config, args.cfg_options)
    model = build_model(cfg, args.checkpoint)
    if args.fold_bn:
        model = fold_bn(model)
    module, names = export_module(model, scope)

    batches = None
    if args.shape is not None:
        example = example_input(model, args.shape, args.config)
    else:
        batches = list(config_batches(model, cfg, args.num_images))
        example = batches[0][:1]
    out = args.out or osp.splitext(osp.basename(args.config))[0] + '.onnx'
    names = export_onnx(module, example, out, names, args.opset)
    clips = (f', clips of {example.shape[1]} frames of '
             f'{example.shape[2]} channels' if example.dim() == 5 else '')
    print(f'{scope} model exported to {out} (traced at '
          f'{tuple(example.shape[-2:])}{clips}; input axes '
          f'{_input_shape(out)}; outputs {", ".join(names)})')

    status = 0
    if args.verify:
        if batches is None:
            batches = config_batches(model, cfg, args.num_images)
        results = verify(module, out, batches)
        for result in results:
            print(f'onnxruntime vs PyTorch at {_describe(result)}')
        ok, message = verification_verdict(results, args.atol,
                                           args.max_spike_flips)
        print(message, file=sys.stdout if ok else sys.stderr)
        status = 0 if ok else 1

    if args.int8:
        int8_out = osp.splitext(out)[0] + '_int8.onnx'
        calibration = [
            batch.numpy() for batch in config_batches(
                model,
                cfg,
                args.calibration_images,
                batch_size=8,
                split='train')
        ]
        exact = quantize_int8(out, int8_out, calibration)
        print(f'int8 model written to {int8_out} ({exact} spike tensors '
              f'exact as uint8; calibrated on '
              f'{sum(len(c) for c in calibration)} training images)')
        if args.verify:
            # int8 weights: reported, not held to --atol
            for result in verify(module, int8_out,
                                 config_batches(model, cfg, args.num_images)):
                print(f'int8 onnxruntime vs PyTorch at {_describe(result)}')

    if args.image is not None:
        label_map = None
        if scope == 'mmseg':
            label_map = args.label_map or osp.splitext(out)[0] + '_label.png'
        result = onnx_inference(out, cfg, args.image)
        for line in describe_prediction(cfg, result, label_map):
            print(line)
    return status


if __name__ == '__main__':
    sys.exit(main())
