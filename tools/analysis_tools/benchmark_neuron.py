"""Time the SFA neuron alone: fused Triton kernels against the eager neuron.

One step is a training-mode forward of ``SFANeuron`` (spikes and their
one-byte code) and the backward of a fixed output gradient into the input.
``SFANeuron(fused=True)`` fires through the fused Triton kernels on CUDA
tensors, ``SFANeuron(fused=False)`` through the eager autograd function
(several elementwise kernels each way). Each neuron is warmed up (Triton
compiles its kernels there), then both are timed alternately; the table
gives the median [min-max] and the eager / fused ratio per precision.

The fused path exists on CUDA only: on another device the tool says so and
times the eager neuron alone.

Examples::

    python tools/analysis_tools/benchmark_neuron.py --device cuda --markdown
    python tools/analysis_tools/benchmark_neuron.py --device cpu \\
        --shape 8 64 56 56 --dtypes fp32
"""
import argparse
import statistics
import time

import torch

from sdt3_mm.models import SFANeuron

DTYPES = dict(fp32=torch.float32, fp16=torch.float16, bf16=torch.bfloat16)


class NeuronStep:
    """A neuron's forward and backward on one fixed input.

    Args:
        fused (bool): ``SFANeuron``'s ``fused`` argument.
        shape (tuple[int]): The input's shape.
        dtype (torch.dtype): The input's (and the gradient's) precision.
        device (torch.device): Where it runs.
        D (int): The neuron's maximum spike count.
    """

    def __init__(self, fused, shape, dtype, device, D):
        generator = torch.Generator(device='cpu').manual_seed(0)
        # Potentials around [0, D], so that all levels, both clamps and the
        # straight-through window's edges are exercised.
        x = torch.randn(shape, generator=generator) * (D / 2) + D / 2
        self.x = x.to(device, dtype).requires_grad_()
        self.grad = torch.randn(shape, generator=generator).to(device, dtype)
        self.neuron = SFANeuron(D=D, fused=fused).train()
        self.device = device

    def __call__(self):
        self.x.grad = None
        self.neuron(self.x).backward(self.grad)

    def timed(self):
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        self()
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - start


def benchmark(args, device):
    """Time the eager and (on CUDA) the fused neuron for each precision.

    Returns:
        list[dict]: Per precision, ``dtype`` and for each neuron timed
        (``eager``, ``fused``) its median, min and max in seconds.
    """
    kinds = dict(eager=False)
    if device.type == 'cuda':
        kinds['fused'] = True
    results = []
    for name in args.dtypes:
        steps = {
            kind: NeuronStep(fused, args.shape, DTYPES[name], device, args.D)
            for kind, fused in kinds.items()
        }
        for step in steps.values():
            for _ in range(args.warmup):
                step()
        times = {kind: [] for kind in steps}
        for _ in range(args.repeats):
            for kind, step in steps.items():
                times[kind].append(step.timed())
        result = dict(dtype=name)
        for kind, t in times.items():
            result[kind] = dict(
                median_s=statistics.median(t), min_s=min(t), max_s=max(t))
        results.append(result)
        del steps
    return results


def _format_ms(timing):
    return (f"{timing['median_s'] * 1e3:.3g} ms "
            f"[{timing['min_s'] * 1e3:.3g}-{timing['max_s'] * 1e3:.3g}]")


def markdown_rows(args, results, device):
    """The results as a markdown table in docs/en/benchmark.md's form: per
    precision the eager neuron, the fused one and eager / fused (on CUDA;
    elsewhere the eager column alone)."""
    where = torch.cuda.get_device_name(device) if device.type == 'cuda' \
        else f'CPU, {torch.get_num_threads()} threads'
    case = (f"SFA neuron D={args.D}, {' x '.join(map(str, args.shape))}, "
            f'{where}')
    fused = device.type == 'cuda'
    header = ['neuron, input, device', 'precision', 'eager (fused=False)']
    if fused:
        header += ['fused (fused=True)', 'eager / fused']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for result in results:
        cells = [case, result['dtype'], _format_ms(result['eager'])]
        if fused:
            ratio = result['eager']['median_s'] / result['fused']['median_s']
            cells += [_format_ms(result['fused']), f'{ratio:.2f}x faster']
        lines.append('| ' + ' | '.join(cells) + ' |')
    return lines


def parse_args():
    parser = argparse.ArgumentParser(
        description='Time the SFA neuron: fused Triton against eager.')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        default=[64, 256, 56, 56],
        help='input shape (default: 64 x 256 x 56 x 56, 51M elements)')
    parser.add_argument(
        '--dtypes', nargs='+', choices=list(DTYPES), default=list(DTYPES))
    parser.add_argument('--D', type=int, default=4)
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument(
        '--markdown',
        action='store_true',
        help='also print the results as rows of docs/en/benchmark.md')
    args = parser.parse_args()
    if any(n <= 0 for n in args.shape):
        parser.error(f'--shape: every size must be positive, got '
                     f'{args.shape}')
    if args.repeats < 1:
        parser.error(f'--repeats must be at least 1, got {args.repeats}')
    return args


def main():
    args = parse_args()
    device = torch.device(args.device)
    if device.type != 'cuda':
        print(f'The fused SFA neuron runs on CUDA tensors only: on '
              f'{device.type} both settings fire through the eager neuron, '
              f'so only the eager neuron is timed.')
    results = benchmark(args, device)
    print(f"SFA neuron D={args.D}, input {' x '.join(map(str, args.shape))} "
          f'on {device}, forward + backward, median of {args.repeats} '
          f'[min-max]')
    for result in results:
        line = f"{result['dtype']:>5} eager {_format_ms(result['eager'])}"
        if 'fused' in result:
            ratio = result['eager']['median_s'] / result['fused']['median_s']
            line += (f"  fused {_format_ms(result['fused'])}  eager / fused "
                     f'= {ratio:.2f}x')
        print(line)
    if args.markdown:
        print('\n'.join(markdown_rows(args, results, device)))


if __name__ == '__main__':
    main()
