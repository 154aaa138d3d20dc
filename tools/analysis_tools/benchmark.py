"""Measure an ESpikeFormer backbone's training and inference speed and memory.

A train step is forward, backward (of the mean of every tap) and an AdamW
step; inference is a forward without autograd. Each is warmed up, then
timed ``--repeats`` times; the table gives the median and the spread
(min-max). Peak memory is CUDA's max allocated on a GPU and the process's
peak RSS on CPU; on CPU every variant is therefore measured in a fresh
process of its own.

Variants (``naive`` and ``lif`` exist here only, as baselines):

- ``ours``: the backbone as shipped (attention as ``q @ (k^T @ v)``).
- ``compiled``: ours under ``torch.compile`` (default inductor backend;
  the warm-up run pays the compilation).
- ``cp``: ours with ``with_cp=True`` (activation checkpointing per block).
- ``folded``: ours with every BN folded into its conv, as deployed
  (``sdt3_mm.analysis.fold_bn``); compare inference with ``--compare ours
  folded --modes infer``.
- ``naive``: attention that forms the N x N map, ``(q @ k^T) @ v``, as the
  reference code does.
- ``lif``: the same E-SpikeFormer with binary multi-step LIF neurons run
  for T = 4 time steps (Spike-driven Transformer V2's neuron) in place of
  its SFA neurons, the image repeated over the steps.
- ``meta``: Meta-SpikeFormer (V2) at T = 4 with the same stage widths as
  the E-SpikeFormer preset (base family only).
- ``eager``: ours with every SFA neuron built with ``fused=False``: the
  eager neuron, where ``ours`` fires through the fused Triton kernels on
  CUDA (on CPU both run the eager neuron).

A variant may name its precision, ``ours:bf16`` or ``ours:fp16`` (autocast),
so that ``--compare ours ours:bf16`` measures mixed precision against fp32;
``--amp`` sets the precision of variants that do not name one.

``--markdown`` also prints the results as rows of the tables of
docs/en/benchmark.md (preset, input, batch | mode | A | B | B / A).

Examples::

    python tools/analysis_tools/benchmark.py l --size 224 224 --batch 8
    python tools/analysis_tools/benchmark.py l --size 800 1333 --batch 1 \
        --compare ours naive
    python tools/analysis_tools/benchmark.py s --compare ours ours:bf16
    python tools/analysis_tools/benchmark.py CONFIG --amp bf16 --device cuda
    python tools/analysis_tools/benchmark.py s --batch 64 --device cuda \
        --compare ours ours:fp16 --markdown
"""
import argparse
import json
import math
import os.path as osp
import statistics
import subprocess
import sys
import time

import torch
from mmengine.config import Config
from torch import nn

from sdt3_mm.analysis import check_finite, fold_bn
from sdt3_mm.models import MetaSpikeFormer
from sdt3_mm.models.layers.spike_code_ops import LinearAttentionProduct
from sdt3_mm.registry import MODELS, build_in_scope

VARIANTS = ('ours', 'compiled', 'cp', 'folded', 'naive', 'lif', 'meta',
            'eager')
PRECISIONS = dict(bf16=torch.bfloat16, fp16=torch.float16)
LIF_STEPS = 4


def variant_spec(spec):
    """Validate ``NAME`` or ``NAME:PRECISION`` (argparse type)."""
    name, _, precision = spec.partition(':')
    if name not in VARIANTS or (precision and precision not in PRECISIONS):
        raise argparse.ArgumentTypeError(
            f'{spec!r}: expected one of {", ".join(VARIANTS)}, optionally '
            f'followed by :{" or :".join(PRECISIONS)}')
    return spec


class QuadraticAttentionProduct(nn.Module):
    """The attention products in the reference's order, ``(q k^T) v`` on
    token-major heads: the N x N map is formed (same values)."""

    def forward(self, q, k, v, *codes):
        q, k, v = (t.transpose(-2, -1) for t in (q, k, v))
        return ((q @ k.transpose(-2, -1)) @ v).transpose(-2, -1)


def build_backbone(target, variant):
    """An ESpikeFormer from a preset name or a config's ``model.backbone``,
    turned into ``variant``."""
    if osp.isfile(target):
        cfg = Config.fromfile(target).model.backbone
        cfg.pop('init_cfg', None)
        cfg.type = cfg.type.split('.')[-1]
    else:
        cfg = dict(type='ESpikeFormer', arch=target)
    if variant == 'lif':
        # The backbone runs over its neurons' time steps.
        cfg.update(neuron_cfg=dict(type='MultiStepLIFNeuron', T=LIF_STEPS))
    elif variant == 'eager':
        # The neurons the backbone builds by default (its family's SFA
        # neuron, or the config's), with the fused kernels turned off.
        default = build_in_scope(MODELS, cfg).neuron_cfg
        cfg.update(neuron_cfg=dict(default, fused=False))
    # In our scope whatever scope a caller (a runner built earlier in the
    # process) left current: the types are ours.
    model = build_in_scope(MODELS, cfg)
    if variant == 'meta':
        if model.arch_settings['family'] != 'base':
            raise ValueError('the meta variant needs a base-family '
                             'E-SpikeFormer (four stage widths)')
        model = MetaSpikeFormer(
            dict(model.arch_settings, family='meta'), T=LIF_STEPS)
    model.out_indices = tuple(range(model.num_taps))
    if variant == 'naive':
        for module in model.modules():
            for name, child in module.named_children():
                if isinstance(child, LinearAttentionProduct):
                    setattr(module, name, QuadraticAttentionProduct())
    elif variant == 'compiled':
        model = torch.compile(model)
    elif variant == 'cp':
        model.with_cp = True
    elif variant == 'folded':
        model = fold_bn(model)
    return model


class Bench:
    """One variant, built once, with its train step and inference."""

    def __init__(self, target, variant, size, batch, device, amp):
        torch.manual_seed(0)
        self.variant, self.batch, self.device = variant, batch, device
        variant, _, precision = variant.partition(':')
        self.model = build_backbone(target, variant).to(device)
        self.inputs = torch.randn(batch, 3, *size, device=device)
        check_finite(self.inputs, 'the benchmark input')
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        self.dtype = PRECISIONS.get(precision or amp)

    def _forward(self):
        with torch.autocast(
                self.device.type, dtype=self.dtype, enabled=self.dtype
                is not None):
            return self.model(self.inputs)

    def train(self):
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        sum(tap.float().mean() for tap in self._forward()).backward()
        self.optimizer.step()

    def infer(self):
        self.model.eval()
        with torch.no_grad():
            self._forward()

    def timed(self, mode):
        if self.device.type == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        getattr(self, mode)()
        if self.device.type == 'cuda':
            torch.cuda.synchronize()
        return time.perf_counter() - start


def _status_gib(field):
    """``VmRSS`` or ``VmHWM`` (peak RSS) of this process, in GiB. Unlike
    ``getrusage``'s maxrss, VmHWM starts afresh at exec, so a child does
    not report its parent's peak."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 2**20
    raise KeyError(field)


def peak_memory(args, variant, device):
    """Peak memory of one train step: CUDA max allocated, or on CPU the
    peak RSS of a fresh process (and its rise over the RSS before the
    step, i.e. activations, gradients and optimizer state)."""
    if device.type == 'cuda':
        bench = Bench(args.target, variant, args.size, args.batch, device,
                      args.amp)
        torch.cuda.reset_peak_memory_stats(device)
        bench.train()
        return dict(peak_gib=torch.cuda.max_memory_allocated(device) / 2**30)
    cmd = [
        sys.executable, __file__, args.target, '--size', *map(str, args.size),
        '--batch',
        str(args.batch), '--variant', variant, '--device', 'cpu',
        '--memory-only'
    ] + (['--amp', args.amp] if args.amp else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cpu_step_memory(args):
    bench = Bench(args.target, args.variant, args.size, args.batch,
                  torch.device('cpu'), args.amp)
    before = _status_gib('VmRSS')
    bench.train()
    peak = _status_gib('VmHWM')
    print(json.dumps(dict(peak_gib=peak, step_gib=peak - before)))


def benchmark(args, variants, device):
    """Warm every variant up, then time them alternately, repeat by repeat,
    so that drifts of the machine hit all of them alike."""
    benches = [
        Bench(args.target, v, args.size, args.batch, device, args.amp)
        for v in variants
    ]
    results = []
    for bench in benches:
        for mode in args.modes:
            for _ in range(args.warmup):
                getattr(bench, mode)()
    times = {(b.variant, m): [] for b in benches for m in args.modes}
    for _ in range(args.repeats):
        for bench in benches:
            for mode in args.modes:
                times[bench.variant, mode].append(bench.timed(mode))
    del benches
    for variant in variants:
        result = dict(variant=variant)
        for mode in args.modes:
            t = times[variant, mode]
            result[mode] = dict(
                median_s=statistics.median(t),
                min_s=min(t),
                max_s=max(t),
                images_per_s=args.batch / statistics.median(t))
        result['memory'] = peak_memory(args, variant, device)
        results.append(result)
    return results


def _row(result, mode):
    timing, memory = result[mode], result['memory']
    step = f" (step +{memory['step_gib']:.2f})" if 'step_gib' in memory \
        else ''
    return (f"{result['variant']:>6} {mode:>5} "
            f"{timing['median_s'] * 1e3:10.1f} ms "
            f"[{timing['min_s'] * 1e3:.1f}-{timing['max_s'] * 1e3:.1f}] "
            f"{timing['images_per_s']:8.2f} img/s  "
            f"peak {memory['peak_gib']:.2f} GiB{step}")


def _format_timing(timing):
    """A median and its [min-max] as docs/en/benchmark.md writes them, in
    the median's unit: seconds from 10 s, else milliseconds (whole ones
    from 100 ms, three figures below)."""
    if timing['median_s'] >= 10:
        scale, unit, digits = 1, 's', 2
    else:
        scale, unit = 1e3, 'ms'
        ms = timing['median_s'] * 1e3
        digits = 0 if ms >= 100 else max(0, 2 - math.floor(math.log10(ms)))
    median, low, high = (f'{timing[k] * scale:.{digits}f}'
                         for k in ('median_s', 'min_s', 'max_s'))
    return f'{median} {unit} [{low}-{high}]'


def _format_memory(memory):
    if 'step_gib' in memory:
        return (f"+{memory['step_gib']:.2f} GiB "
                f"(peak {memory['peak_gib']:.2f})")
    return f"peak {memory['peak_gib']:.2f} GiB"


def markdown_rows(args, results, device):
    """The results as a markdown table in docs/en/benchmark.md's form.

    Args:
        args (argparse.Namespace): The tool's arguments (target, size,
            batch, modes).
        results (list[dict]): One or two variants' results, as
            :func:`benchmark` returns them.
        device (torch.device): Where they were measured; a CUDA device is
            named by its GPU.

    Returns:
        list[str]: A header, its separator and one row per mode and one for
        memory; with two variants a last column gives B / A (times, and
        the train step's memory: its rise on CPU, its peak on CUDA).
    """
    where = torch.cuda.get_device_name(device) if device.type == 'cuda' \
        else f'CPU, {torch.get_num_threads()} threads'
    case = (f'{args.target}, {args.size[0]} x {args.size[1]}, '
            f'{args.batch}, {where}')
    names = [f"`{r['variant']}`" for r in results]
    header = ['preset, input, batch, device', 'mode', *names]
    if len(results) == 2:
        header.append(f'{names[1]} / {names[0]}')
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '---|' * len(header)]
    labels = dict(train='train step', infer='inference')
    for mode in args.modes:
        cells = [case, labels[mode]]
        cells += [_format_timing(r[mode]) for r in results]
        if len(results) == 2:
            ratio = results[1][mode]['median_s'] / results[0][mode]['median_s']
            cells.append(f'{ratio:.2f}x time')
        lines.append('| ' + ' | '.join(cells) + ' |')
    cells = [case, 'train-step memory']
    cells += [_format_memory(r['memory']) for r in results]
    if len(results) == 2:
        key = 'step_gib' if 'step_gib' in results[0]['memory'] \
            else 'peak_gib'
        ratio = results[1]['memory'][key] / results[0]['memory'][key]
        cells.append(f'{ratio:.2f}x')
    lines.append('| ' + ' | '.join(cells) + ' |')
    return lines


def parse_args():
    parser = argparse.ArgumentParser(
        description='Benchmark an ESpikeFormer backbone.')
    parser.add_argument(
        'target',
        help='preset (t, s, m, l, 83m, 171m) or '
        'a config whose model has an ESpikeFormer backbone')
    parser.add_argument(
        '--size', type=int, nargs=2, default=[224, 224], metavar=('H', 'W'))
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--variant', type=variant_spec, default='ours')
    parser.add_argument(
        '--compare',
        type=variant_spec,
        nargs=2,
        metavar=('A', 'B'),
        help='measure two variants and print B / A ratios')
    parser.add_argument(
        '--modes',
        nargs='+',
        choices=['train', 'infer'],
        default=['train', 'infer'])
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument(
        '--amp',
        choices=list(PRECISIONS),
        help='autocast precision of variants that do not name one')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--json', help='also write the results here')
    parser.add_argument(
        '--markdown',
        action='store_true',
        help='also print the results as rows of docs/en/benchmark.md')
    parser.add_argument(
        '--memory-only', action='store_true', help=argparse.SUPPRESS)
    return parser.parse_args()


def main():
    args = parse_args()
    device = torch.device(args.device)
    if args.memory_only:
        _cpu_step_memory(args)
        return
    variants = args.compare or [args.variant]
    results = benchmark(args, variants, device)
    print(f'{args.target} {args.size[0]}x{args.size[1]} batch {args.batch} '
          f'on {device} ({torch.get_num_threads()} threads), '
          f'{args.amp or "fp32"} unless named, median of {args.repeats} '
          f'[min-max]')
    for result in results:
        for mode in args.modes:
            print(_row(result, mode))
    if args.compare:
        first, second = results
        for mode in args.modes:
            ratio = second[mode]['median_s'] / first[mode]['median_s']
            print(f'{mode} time: {second["variant"]} / {first["variant"]} '
                  f'= {ratio:.2f}x')
        key = 'step_gib' if 'step_gib' in first['memory'] else 'peak_gib'
        ratio = second['memory'][key] / first['memory'][key]
        print(f'{key}: {second["variant"]} / {first["variant"]} = '
              f'{ratio:.2f}x')
    if args.markdown:
        print('\n'.join(markdown_rows(args, results, device)))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=2)


if __name__ == '__main__':
    main()
