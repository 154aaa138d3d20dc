"""Write a tonic event-camera data set in sdt3_mm's event layout.

tonic (``pip install -e .[events]``; ``tools/ensure_env.sh`` installs it)
downloads and reads DVS Gesture, N-MNIST, POKER-DVS, CIFAR10-DVS, ...;
this writes each split as ``.npz`` recordings that
:class:`sdt3_mm.datasets.EventStreamDataset` reads (``OUT/<split>/<class>/``,
``OUT/meta/<split>.txt``, ``OUT/meta/classes.txt``); the event transforms
(``EventsToFrames`` and the rest) then bin them as tonic's ``ToFrame``.

Example (DVS128 Gesture, for ``configs/dvs_gesture``)::

    python tools/dataset_converters/tonic_to_npz.py DVSGesture \\
        data/tonic data/dvs_gesture

Data sets whose constructor takes ``train`` are written as ``train`` and
``test``; others (e.g. ``CIFAR10DVS``) as one split, ``all``, to be split
by annotation files.

Values that do not fit the layout (coordinates beyond ``int16``, negative
ones, polarities other than 0/1) stop the conversion with the file named;
so do recordings not sorted by time (tonic's slicers assume sorted events,
and :class:`~sdt3_mm.datasets.LoadEvents` refuses them), unless
``--sort-by-time`` sorts each recording stably by ``t``.
"""
import argparse
import inspect
import sys

from sdt3_mm.datasets import write_event_split


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Write a tonic data set as sdt3_mm .npz recordings')
    parser.add_argument(
        'dataset', help='class name in tonic.datasets, e.g. DVSGesture')
    parser.add_argument(
        'root', help='tonic\'s save_to folder (downloads go there)')
    parser.add_argument('out', help='folder of the written set')
    parser.add_argument(
        '--sort-by-time',
        action='store_true',
        help='sort each recording by time (stable) instead of refusing '
        'one that is not sorted')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import tonic.datasets
    dataset_cls = getattr(tonic.datasets, args.dataset, None)
    if not inspect.isclass(dataset_cls):
        names = sorted(name for name, value in vars(tonic.datasets).items()
                       if inspect.isclass(value) and hasattr(value, 'classes'))
        sys.exit(f'tonic_to_npz: tonic.datasets has no data set '
                 f'{args.dataset!r}; data sets: {", ".join(names)}')
    params = inspect.signature(dataset_cls).parameters
    splits = {
        'train': True,
        'test': False
    } if 'train' in params else {
        'all': None
    }
    for split, train in splits.items():
        kwargs = dict(save_to=args.root)
        if train is not None:
            kwargs['train'] = train
        dataset = dataset_cls(**kwargs)
        try:
            num = write_event_split(dataset, dataset.classes, args.out, split,
                                    args.sort_by_time)
        except ValueError as error:
            hint = ' (or pass --sort-by-time)' \
                if 'not sorted by time' in str(error) else ''
            sys.exit(f'tonic_to_npz: {args.dataset} {split}: {error}{hint}')
        print(f'{args.dataset} {split}: {num} recordings, sensor_size '
              f'{tuple(dataset.sensor_size)} -> {args.out}/{split}')


if __name__ == '__main__':
    main()
