"""Write the embedded demo data set (deterministic synthetic shapes).

The demo configs write their data on first use; this writes it ahead of
time, or elsewhere, or at another size.

Example::

    python tools/misc/make_demo_data.py cls data/shapes_cls
"""
import argparse

from sdt3_mm.datasets import write_classification_set

WRITERS = {'cls': write_classification_set}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        'layout', choices=sorted(WRITERS), help='cls: ImageNet folder layout')
    parser.add_argument('out', help='folder to write')
    parser.add_argument('--num-train', type=int, default=1200)
    parser.add_argument('--num-val', type=int, default=300)
    parser.add_argument('--size', type=int, default=64, help='image side')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    root = WRITERS[args.layout](args.out, args.num_train, args.num_val,
                                args.size, args.seed)
    print(f'demo data ({args.layout}) in {root}')


if __name__ == '__main__':
    main()
