"""Write an embedded demo data set (deterministic synthetic shapes).

The demo configs write their data on first use; this writes it ahead of
time, or elsewhere, or at another size. With no options, each layout is
written as its demo configs read it (their data set arguments), so a
config given ``data_root=OUT`` accepts it; a set written with other
options needs the same arguments in the config's data set (the data set
refuses a set written with other settings).

Example::

    python tools/misc/make_demo_data.py cls data/shapes_cls
    python tools/misc/make_demo_data.py coco data/shapes_det
    python tools/misc/make_demo_data.py ade20k data/shapes_seg
    python tools/misc/make_demo_data.py events data/shapes_events
"""
import argparse

from sdt3_mm.datasets.demo import (write_classification_set,
                                   write_detection_set, write_event_set,
                                   write_segmentation_set)

# Per layout: the writer, the demo configs that read the set, and the
# writer's arguments as those configs' data sets pass them (a data set's
# own default where the config gives none).
LAYOUTS = {
    'cls': (write_classification_set, (
        'configs/demo/e-spikeformer-t_shapes-cls.py',
        'configs/demo/meta-spikeformer_t4_shapes-cls.py',
        'configs/demo/spike-mae_e-spikeformer-tiny_shapes.py',
    ), dict(num_train=1200, num_val=300, size=64, seed=0)),
    'coco': (write_detection_set,
             ('configs/demo/mask-rcnn_e-spikeformer-t_spike-fpn_shapes.py', ),
             dict(num_train=600, num_val=100, size=128, seed=0,
                  max_objects=4)),
    'ade20k':
    (write_segmentation_set,
     ('configs/demo/fpn_e-spikeformer-t_spike-fpn_shapes-seg.py', ),
     dict(num_train=600, num_val=100, size=128, seed=0, max_objects=6)),
    'events':
    (write_event_set, ('configs/demo/e-spikeformer-t_shapes-events.py', ),
     dict(num_train=1200, num_val=300, sensor_size=(64, 64), seed=0)),
}
# Option of each writer argument, and the data set argument it sets.
OPTIONS = dict(
    num_train=('--num-train', 'num_train'),
    num_val=('--num-val', 'num_val'),
    size=('--size', 'image_size'),
    seed=('--seed', 'seed'),
    max_objects=('--max-objects', 'max_objects'),
    sensor_size=('--sensor-size', 'sensor_size'))


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be at least 1, got {value}')
    return value


def _defaults(key):
    return ', '.join(f'{layout} {settings[key]}'
                     for layout, (_, _, settings) in LAYOUTS.items()
                     if key in settings)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        'layout',
        choices=sorted(LAYOUTS),
        help='cls: ImageNet folder layout (one shape per image); coco: COCO '
        'instances (several shapes per image, boxes and polygons); ade20k: '
        'the same scenes with per-pixel label maps; events: simulated '
        'event-camera recordings of a moving shape (.npz, tonic layout)')
    parser.add_argument('out', help='folder to write')
    parser.add_argument(
        '--num-train',
        type=_positive_int,
        help=f'training images (default: {_defaults("num_train")})')
    parser.add_argument(
        '--num-val',
        type=_positive_int,
        help=f'held-out images (default: {_defaults("num_val")})')
    parser.add_argument(
        '--size',
        type=_positive_int,
        help=f'image side (default: {_defaults("size")})')
    parser.add_argument(
        '--seed', type=int, help=f'seed (default: {_defaults("seed")})')
    parser.add_argument(
        '--max-objects',
        type=_positive_int,
        help=f'most shapes per image, coco and ade20k only (default: '
        f'{_defaults("max_objects")})')
    parser.add_argument(
        '--sensor-size',
        type=_positive_int,
        nargs=2,
        metavar=('W', 'H'),
        help=f'simulated camera, events only (default: '
        f'{_defaults("sensor_size")})')
    args = parser.parse_args(argv)
    if args.sensor_size is not None:
        args.sensor_size = tuple(args.sensor_size)
    return parser, args


def main(argv=None):
    parser, args = parse_args(argv)
    write, configs, defaults = LAYOUTS[args.layout]
    settings = dict(defaults)
    for key, (option, _) in OPTIONS.items():
        value = getattr(args, key)
        if value is None:
            continue
        if key not in settings:
            parser.error(f'{option} does not apply to the {args.layout} '
                         f'layout')
        settings[key] = value
    root = write(args.out, **settings)
    print(f'demo data ({args.layout}) in {root}: ' +
          ', '.join(f'{k}={v}' for k, v in settings.items()))
    changed = {
        OPTIONS[k][1]: v
        for k, v in settings.items() if v != defaults[k]
    }
    print(f'read by {", ".join(configs)} with data_root={root}' +
          (f' and, in its data sets, {changed}' if changed else ''))


if __name__ == '__main__':
    main()
