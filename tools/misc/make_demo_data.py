"""Write an embedded demo data set (deterministic synthetic shapes).

The demo configs write their data on first use; this writes it ahead of
time, or elsewhere, or at another size.

Example::

    python tools/misc/make_demo_data.py cls data/shapes_cls
    python tools/misc/make_demo_data.py coco data/shapes_det
    python tools/misc/make_demo_data.py ade20k data/shapes_seg
"""
import argparse

from sdt3_mm.datasets import (write_classification_set, write_detection_set,
                              write_segmentation_set)

# Layout: (writer, default train / val counts and image side).
LAYOUTS = {
    'cls': (write_classification_set, 1200, 300, 64),
    'coco': (write_detection_set, 600, 100, 128),
    'ade20k': (write_segmentation_set, 600, 100, 128),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        'layout',
        choices=sorted(LAYOUTS),
        help='cls: ImageNet folder layout (one shape per image); coco: COCO '
        'instances (several shapes per image, boxes and polygons); ade20k: '
        'the same scenes with per-pixel label maps')
    parser.add_argument('out', help='folder to write')
    parser.add_argument('--num-train', type=int, help='training images')
    parser.add_argument('--num-val', type=int, help='held-out images')
    parser.add_argument('--size', type=int, help='image side')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    write, num_train, num_val, size = LAYOUTS[args.layout]
    root = write(args.out, args.num_train or num_train, args.num_val
                 or num_val, args.size or size, args.seed)
    print(f'demo data ({args.layout}) in {root}')


if __name__ == '__main__':
    main()
