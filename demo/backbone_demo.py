"""Build every ESpikeFormer preset, run it and print its taps.

For each preset: the parameter count (backbone plus the 1000-class head
of the paper's tables), a forward pass of one image in eval mode, and the
shape of every tap, with the time the forward took on this machine.
"""
import argparse
import time

import torch

from sdt3_mm.models import ESpikeFormer
from sdt3_mm.registry import MODELS


def head_params(backbone, num_classes=1000):
    """Parameters of the classifier the paper counts: a linear layer on the
    last tap, twice for the large family's ``head`` and ``head_kd``."""
    channels = backbone.stage_channels[-1]
    num_heads = 2 if backbone.arch_settings['family'] == 'large' else 1
    return num_heads * (channels * num_classes + num_classes)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        '--size',
        type=int,
        nargs=2,
        default=[224, 224],
        metavar=('H', 'W'),
        help='input size')
    parser.add_argument(
        '--archs', nargs='+', default=['t', 's', 'm', 'l', '83m', '171m'])
    args = parser.parse_args()
    torch.manual_seed(0)
    image = torch.randn(1, 3, *args.size)
    print(f'input {tuple(image.shape)}, torch {torch.__version__}, '
          f'{torch.get_num_threads()} threads')
    for arch in args.archs:
        num_taps = len(
            ESpikeFormer.stage_layout(ESpikeFormer.arch_zoo[arch])[0])
        model = MODELS.build(
            dict(
                type='sdt3_mm.ESpikeFormer',
                arch=arch,
                out_indices=tuple(range(num_taps))))
        model.eval()
        params = sum(p.numel() for p in model.parameters())
        with torch.no_grad():
            start = time.perf_counter()
            taps = model(image)
            elapsed = time.perf_counter() - start
        print(f'\nESpikeFormer {arch!r}: {params:,} backbone parameters, '
              f'{params + head_params(model):,} with the 1000-class head; '
              f'forward {elapsed * 1000:.0f} ms')
        for i, tap in enumerate(taps):
            stride = args.size[0] / tap.shape[2]
            print(f'  tap {i}: {tuple(tap.shape)}  (stride {stride:g})')


if __name__ == '__main__':
    main()
