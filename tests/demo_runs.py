"""Running the demo configs small, as the tool and reliability tests do: the
``--cfg-options`` that cut a demo config's data to a few generated images,
and the command line of a training run of ``tools/train.py``.

The demo data sets write their set into ``data_root`` on first use, at the
size their ``num_train`` and ``num_val`` ask for (see
:mod:`sdt3_mm.datasets.demo`), so these options need no data prepared.
"""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TRAIN = osp.join(ROOT, 'tools', 'train.py')
DATA_LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
# Data loaded in the main process: no worker processes to start for a few
# images (PyTorch's DataLoader refuses persistent workers without workers).
IN_PROCESS = dict(num_workers=0, persistent_workers=False)


def small_set_options(data_root,
                      num_train,
                      num_val,
                      loaders=DATA_LOADERS,
                      **loader_options):
    """``--cfg-options`` that point data loaders of a demo config at a small
    demo set.

    Args:
        data_root (str): Folder the set is written to and read from, as the
            config's data set takes it (the COCO layout wants a trailing
            ``/``).
        num_train (int): Training images (or recordings) of the set.
        num_val (int): Held-out images (or recordings) of the set.
        loaders (Sequence[str]): The config's data loaders to point at it.
            Defaults to the training, validation and test loaders.
        **loader_options: Settings of each of those loaders
            (``batch_size=4``, ``**IN_PROCESS``, ...).

    Returns:
        list[str]: ``key=value`` options, per loader its data set's
        ``data_root``, ``num_train`` and ``num_val``, then its settings.
    """
    options = []
    for loader in loaders:
        options += [
            f'{loader}.dataset.data_root={data_root}',
            f'{loader}.dataset.num_train={num_train}',
            f'{loader}.dataset.num_val={num_val}'
        ]
        options += [
            f'{loader}.{key}={value}' for key, value in loader_options.items()
        ]
    return options


def train_command(config, work_dir, cfg_options, *extra):
    """The command line of ``tools/train.py`` training ``config`` without
    validation.

    Args:
        config (str): Config file.
        work_dir (str): The run's ``--work-dir``.
        cfg_options (Sequence[str]): Its ``--cfg-options``.
        *extra (str): Further arguments of the tool (``--resume PATH``).

    Returns:
        list[str]: The command, this Python first.
    """
    return [
        sys.executable, TRAIN, config, '--work-dir', work_dir, '--no-validate',
        *extra, '--cfg-options', *cfg_options
    ]


def coco_evaluator_options(data_root):
    """``--cfg-options`` that score the detection demo config against the
    held-out annotations of the set in ``data_root`` (its ``CocoMetric``
    reads the annotation file itself, not through the data set).

    Args:
        data_root (str): Folder of the COCO-layout demo set.

    Returns:
        list[str]: The validation and test evaluators' ``ann_file``.
    """
    ann_file = f'{data_root}/annotations/instances_val.json'
    return [
        f'val_evaluator.ann_file={ann_file}',
        f'test_evaluator.ann_file={ann_file}'
    ]
