"""Time a model's evaluation forward plain and under SpikeCounter.

What counting costs on top of a forward: it is what ``FiringRateHook`` adds
to every val / test iteration (the counter's hooks, and for inputs that are
not a neuron's own output, reading their values). Plain and counted
forwards alternate, after warm-up runs, and the median of each is printed.

Example::

    python tools/analysis_tools/benchmark_counting.py \
        configs/demo/fpn_e-spikeformer-t_spike-fpn_shapes-seg.py \
        --batch-size 8 --size 128 128 --repeats 10
"""
import argparse
import statistics
import time

import torch
from model_inputs import add_model_arguments, build_analysis_model

import sdt3_mm  # noqa: F401  (registries)
from sdt3_mm.analysis import SpikeCounter


def parse_args():
    parser = argparse.ArgumentParser(
        description='Time a forward plain and under SpikeCounter')
    add_model_arguments(parser)
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument(
        '--size', type=int, nargs=2, default=(224, 224), metavar=('H', 'W'))
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    return parser.parse_args()


def main():
    args = parse_args()
    model, cfg = build_analysis_model(args.target, args.checkpoint,
                                      args.cfg_options)
    x = torch.randn(args.batch_size, 3, *args.size,
                    generator=torch.Generator().manual_seed(0))
    if cfg is None:

        def forward():
            return model(x)
    else:

        def forward():
            return model(x, mode='tensor')

    counter = SpikeCounter(model)

    def counted():
        with counter:
            forward()
            counter.add_images(args.batch_size)

    timings = {'plain': [], 'counted': []}
    with torch.no_grad():
        for _ in range(args.warmup):
            forward()
            counted()
        for _ in range(args.repeats):
            for name, run in (('plain', forward), ('counted', counted)):
                start = time.perf_counter()
                run()
                timings[name].append(time.perf_counter() - start)
        summary = counter.summary()  # the one synchronisation, not timed
    plain = statistics.median(timings['plain']) * 1e3
    counted_ms = statistics.median(timings['counted']) * 1e3
    print(f'{args.target}, batch {args.batch_size} at {args.size[0]} x '
          f'{args.size[1]}, {torch.get_num_threads()} threads: plain '
          f'{plain:.1f} ms, counted {counted_ms:.1f} ms per forward '
          f'(median of {args.repeats}; +{counted_ms / plain - 1:.1%}); '
          f'{len(summary["layers"])} layers counted')


if __name__ == '__main__':
    main()
