"""Inference speed (and optionally accuracy) of a model of an OpenMMLab
config in PyTorch eager, eager with BatchNorm folded, onnxruntime fp32
and onnxruntime int8 (spikes exact, weights int8; ``--int8``).

All variants run the same export wrapper (see
:mod:`sdt3_mm.deployment.onnx_export`: a classifier to class scores, a
segmentor to logits at the input size, a detector's backbone plus neck),
in evaluation mode, on one batch of normalised inputs; they are timed in
turns (blocks of consecutive runs, each after a few warm-up runs), for
each thread count (torch's
``set_num_threads`` and onnxruntime's ``intra_op_num_threads``). Prints
the median time per batch with min-max, and the speed-up over eager.

``--accuracy`` also runs every variant on the config's whole test set and
prints top-1 (classifier) or mIoU (segmentor) with the largest
difference to eager.

Examples::

    # the classification demo (its checkpoint), 64 x 64, batch 1
    python tools/deployment/benchmark_onnx.py \
        configs/demo/e-spikeformer-t_shapes-cls.py \
        --checkpoint work_dirs/e-spikeformer-t_shapes-cls/epoch_20.pth \
        --shape 64 64 --threads 1 2 --int8 --accuracy
    # E-SpikeFormer S at 224 x 224 (random weights: the speed does not
    # depend on them)
    python tools/deployment/benchmark_onnx.py \
        configs/e_spikeformer/e-spikeformer-s_8xb256-lamb-200e_in1k.py \
        --shape 224 224 --threads 1 2
    # the event demo: clips of 4 frames of 2 channels (T C H W)
    python tools/deployment/benchmark_onnx.py \
        configs/demo/e-spikeformer-t_shapes-events.py \
        --shape 4 2 32 32 --threads 1 2
"""
import argparse
import os.path as osp
import sys
import tempfile
import time

import numpy as np
import torch
from mmengine.config import DictAction

import sdt3_mm  # noqa: F401  (registries)
from sdt3_mm.analysis import fold_bn
from sdt3_mm.deployment import (build_model, config_batches, example_input,
                                export_module, export_onnx, load_config,
                                ort_session, quantize_int8)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Time (and score) a model in PyTorch eager, with BN '
        'folded, and in onnxruntime fp32 / int8')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--checkpoint', help='checkpoint file (default: random weights)')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        required=True,
        metavar='SIZE',
        help='input size of the timed batch: H W for images (the '
        'backbone\'s in_channels channels), T C H W for clips (required '
        'form for a model whose data preprocessor is a '
        'FramesDataPreprocessor); H and W at least 17')
    parser.add_argument('--batch', type=int, default=1, help='batch size')
    parser.add_argument(
        '--threads',
        type=int,
        nargs='+',
        default=[1],
        help='thread counts to time')
    parser.add_argument(
        '--repeats', type=int, default=20, help='timed runs per variant')
    parser.add_argument(
        '--warmup', type=int, default=3, help='untimed runs first')
    parser.add_argument(
        '--int8',
        action='store_true',
        help='also quantise to int8 (spikes exact, int8 weights)')
    parser.add_argument(
        '--calibration-images',
        type=int,
        default=64,
        help='training images (test pipeline) that calibrate the int8 '
        'scales of activations that are not spikes (random inputs without '
        '--checkpoint)')
    parser.add_argument(
        '--accuracy',
        action='store_true',
        help='also score every variant on the config\'s test set')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value (a.b=1, list=[1,2])')
    args = parser.parse_args(argv)
    if len(args.shape) not in (2, 4):
        parser.error(f'--shape takes H W (images) or T C H W (clips), got '
                     f'{len(args.shape)} values')
    return args


class OrtModule:
    """onnxruntime session called like the PyTorch wrapper."""

    def __init__(self, path, threads):
        self.session = ort_session(path, threads)
        self.name = self.session.get_inputs()[0].name

    def __call__(self, inputs):
        outputs = self.session.run(None, {self.name: inputs.numpy()})
        return [torch.from_numpy(out) for out in outputs]


def _first(outputs):
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


def time_variants(variants, inputs, threads, repeats, warmup, rounds=5):
    """Median and range of each variant's time per batch, in ms.

    The variants take turns in ``rounds`` blocks of consecutive runs (so
    a slow minute of a shared machine hits them all, while one variant's
    idle threads, e.g. onnxruntime's spinning pool, do not slow the next
    run of another), each block after ``warmup`` untimed runs.
    """
    torch.set_num_threads(threads)
    times = {name: [] for name in variants}
    per_block = max(1, repeats // rounds)
    with torch.no_grad():
        for _ in range(rounds):
            for name, run in variants.items():
                for _ in range(warmup):
                    run(inputs)
                for _ in range(per_block):
                    start = time.perf_counter()
                    run(inputs)
                    times[name].append((time.perf_counter() - start) * 1e3)
    return {
        name: (float(np.median(t)), min(t), max(t))
        for name, t in times.items()
    }


def score(run, model, cfg, scope):
    """Top-1 (%) of a classifier or mIoU (%) of a segmentor on the test
    set, with ``run`` mapping a normalised batch to the wrapper's output."""
    from mmengine.runner import Runner
    loader_cfg = cfg.test_dataloader.copy()
    loader_cfg.update(num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg)
    correct = total = 0
    num_classes = None
    confusion = None
    with torch.no_grad():
        for data in loader:
            batch = model.data_preprocessor(data, False)
            out = _first(run(batch['inputs']))
            samples = batch['data_samples']
            if scope == 'mmpretrain':
                labels = torch.cat([s.gt_label for s in samples])
                correct += int((out.argmax(1) == labels).sum())
                total += len(labels)
                continue
            num_classes = out.shape[1]
            if confusion is None:
                confusion = torch.zeros(
                    num_classes, num_classes, dtype=torch.int64)
            for logits, sample in zip(out, samples):
                gt = sample.gt_sem_seg.data[0]
                h, w = gt.shape
                pred = logits[:, :h, :w].argmax(0)
                keep = gt != 255
                confusion += torch.bincount(
                    gt[keep] * num_classes + pred[keep],
                    minlength=num_classes**2).reshape(num_classes, -1)
    if scope == 'mmpretrain':
        return 100. * correct / total
    inter = confusion.diag().double()
    union = confusion.sum(0) + confusion.sum(1) - confusion.diag()
    present = union > 0
    return float(100. * (inter[present] / union[present]).mean())


def main(argv=None):
    args = parse_args(argv)
    cfg, scope = load_config(args.config, args.cfg_options)
    if args.accuracy and scope == 'mmdet':
        raise ValueError('--accuracy: a detector exports only its backbone '
                         'and neck, which give no labels to score')
    if args.accuracy and args.checkpoint is None:
        raise ValueError('--accuracy needs --checkpoint (random weights '
                         'score nothing meaningful)')
    torch.manual_seed(0)
    model = build_model(cfg, args.checkpoint)
    eager, names = export_module(model, scope)
    folded_model = fold_bn(build_model(cfg, args.checkpoint))
    folded, _ = export_module(folded_model, scope)
    # one sample's shape: (C, H, W) or, for clips, (T, C, H, W)
    sample = example_input(model, args.shape, args.config).shape[1:]
    inputs = torch.randn(args.batch, *sample)

    with tempfile.TemporaryDirectory() as tmp:
        fp32_file = osp.join(tmp, 'fp32.onnx')
        export_onnx(folded, inputs[:1], fp32_file, names)
        files = {'onnxruntime fp32': fp32_file}
        if args.int8:
            if args.checkpoint is not None:
                calibration = [
                    b.numpy() for b in config_batches(
                        model,
                        cfg,
                        args.calibration_images,
                        batch_size=8,
                        split='train')
                ]
            else:
                calibration = [
                    torch.randn(1, *sample).numpy() for _ in range(4)
                ]
            files['onnxruntime int8'] = osp.join(tmp, 'int8.onnx')
            exact = quantize_int8(fp32_file, files['onnxruntime int8'],
                                  calibration)
            print(f'int8: {exact} spike tensors quantised exactly '
                  f'(scale 1/norm), calibrated on '
                  f'{sum(len(c) for c in calibration)} inputs')

        clips = (f' (clips of {sample[0]} frames of {sample[1]} '
                 f'channels)' if len(sample) == 4 else '')
        print(f'{osp.basename(args.config)}: batch {args.batch} at '
              f'{args.shape[-2]} x {args.shape[-1]}{clips}, torch '
              f'{torch.__version__}, {args.repeats} timed runs')
        for threads in args.threads:
            variants = {'eager': eager, 'eager, BN folded': folded}
            variants.update({
                name: OrtModule(path, threads)
                for name, path in files.items()
            })
            result = time_variants(variants, inputs, threads, args.repeats,
                                   args.warmup)
            base = result['eager'][0]
            for name, (median, low, high) in result.items():
                print(f'  {threads} thread(s)  {name:<18} {median:8.2f} ms '
                      f'[{low:.2f}-{high:.2f}]  {base / median:5.2f}x')

        if args.accuracy:
            variants = {'eager': eager, 'eager, BN folded': folded}
            variants.update({
                name: OrtModule(path, args.threads[-1])
                for name, path in files.items()
            })
            metric = 'top-1' if scope == 'mmpretrain' else 'mIoU'
            scores = {
                name: score(run, model, cfg, scope)
                for name, run in variants.items()
            }
            for name, value in scores.items():
                print(f'  {metric} {name:<18} {value:6.2f} '
                      f'({value - scores["eager"]:+.2f})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
