"""Evaluate a checkpoint with an OpenMMLab config (classification,
detection or segmentation alike: the config's ``default_scope`` picks the
library).

Besides the arguments tools/train.py has, it takes those of the library's
own ``tools/test.py`` and treats the config as that script does:

- ``--show``, ``--show-dir``, ``--wait-time`` (and, for mmpretrain,
  ``--interval``): turn on the config's
  ``default_hooks.visualization`` (mmpretrain: ``out_dir``; mmdet:
  ``test_out_dir``, under ``<work_dir>/<timestamp>/`` when relative;
  mmseg: the visualizer's ``save_dir``, images in
  ``<show_dir>/vis_data/vis_image/``).
- ``--tta``: wrap the model in the config's ``tta_model`` and test with its
  ``tta_pipeline`` (mmpretrain and mmdet make flip TTA up when the config
  has none; mmseg needs both; mmdet's TTA merges boxes only, so detectors
  with masks are refused).
- ``--out``: the library's own dump: mmpretrain, the predictions pickled
  by mmengine's ``DumpResults`` (or the metrics, ``--out-item metrics``);
  mmdet, a ``.pkl`` of ``mmdet.evaluation.DumpDetResults`` (RLE masks,
  readable by mmdet's ``tools/analysis_tools/eval_metric.py``); mmseg, a
  directory of prediction PNGs (``IoUMetric`` ``output_dir`` with
  ``keep_results``).

Example::

    python tools/test.py configs/demo/e-spikeformer-t_shapes-cls.py \
        work_dirs/e-spikeformer-t_shapes-cls/epoch_20.pth --show-dir vis
"""
import argparse
import os.path as osp
import warnings
from copy import deepcopy

from mmengine.config import ConfigDict
from mmengine.runner import Runner
from runner_args import add_common_arguments, load_config

import sdt3_mm  # noqa: F401  (registries)
from sdt3_mm.reliability import safe_checkpoint_loading

LIBRARIES = ('mmpretrain', 'mmdet', 'mmseg')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (evaluate) a model')
    add_common_arguments(parser)
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out',
        help='dump the predictions in the format of the library of the '
        'config: mmpretrain, a pickle file of the predictions (or of the '
        'metrics with --out-item metrics); mmdet, a .pkl file for offline '
        'evaluation (DumpDetResults, RLE masks); mmseg, a directory of '
        'prediction PNGs')
    parser.add_argument(
        '--out-item',
        choices=['metrics', 'pred'],
        help='mmpretrain configs only: what --out holds, the predictions '
        '(default) or the metrics')
    parser.add_argument(
        '--show', action='store_true', help='show the predictions')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images are saved (mmdet: relative '
        'to <work_dir>/<timestamp>/ unless absolute)')
    parser.add_argument(
        '--interval',
        type=int,
        default=1,
        help='mmpretrain configs: paint every this many samples (mmdet and '
        'mmseg paint every test image)')
    parser.add_argument(
        '--wait-time',
        type=float,
        default=2,
        help='seconds each shown image stays (with --show)')
    parser.add_argument(
        '--tta',
        action='store_true',
        help='test-time augmentation with the config\'s tta_model and '
        'tta_pipeline (mmpretrain and mmdet: flip TTA when the config has '
        'none; mmseg: both must be in the config). MMDetection has no TTA '
        'for instance segmentation: refused for detectors with masks')
    return parser.parse_args(argv)


def library_of(cfg, args):
    """The library whose conventions the config follows.

    Returns:
        str | None: ``cfg.default_scope`` when one of ``'mmpretrain'``,
        ``'mmdet'`` and ``'mmseg'``; None for another scope (then only
        ``--out`` is allowed among the library options, dumping with
        mmengine's ``DumpResults``).

    Raises:
        ValueError: For another scope with ``--show``, ``--show-dir``,
            ``--tta`` or ``--out-item``.
    """
    scope = cfg.get('default_scope')
    if scope in LIBRARIES:
        return scope
    used = [
        name
        for name, value in (('--show', args.show), ('--show-dir',
                                                    args.show_dir),
                            ('--tta', args.tta), ('--out-item', args.out_item))
        if value
    ]
    if used:
        raise ValueError(
            f'{", ".join(used)}: tools/test.py supports these for configs '
            f'with default_scope in {LIBRARIES}; this config has {scope!r}')
    return None


def trigger_visualization_hook(cfg, args, library):
    """Turn on ``cfg.default_hooks.visualization`` as the library's own
    test.py does for ``--show`` / ``--show-dir`` (changes ``cfg`` in
    place), painting every test image: mmpretrain's hook every
    ``args.interval``-th sample, mmdet's every image, mmseg's with its
    ``interval`` set to 1 (every batch) whatever the config says.

    Raises:
        RuntimeError: If the config has no visualization hook.
    """
    hook = (cfg.get('default_hooks') or {}).get('visualization')
    if hook is None:
        raise RuntimeError(
            '--show/--show-dir need a visualization hook in the config\'s '
            'default_hooks, e.g. default_hooks.visualization=dict(type=' + {
                'mmpretrain': "'VisualizationHook'",
                'mmdet': "'DetVisualizationHook'",
                'mmseg': "'SegVisualizationHook'"
            }[library] + ')')
    if library == 'mmpretrain':
        hook.enable = True
        hook.show = args.show
        hook.wait_time = args.wait_time
        hook.out_dir = args.show_dir
        hook.interval = args.interval
        return
    hook.draw = True
    if args.show:
        hook.show = True
        hook.wait_time = args.wait_time
    if library == 'mmseg':
        # mmseg's SegVisualizationHook paints only every ``interval``-th
        # test batch (50 by default, counted from the 50th), so a test set
        # of fewer than 50 batches would be painted not at all.
        hook.interval = 1
    if args.show_dir:
        if library == 'mmdet':
            hook.test_out_dir = args.show_dir
        else:
            if cfg.get('visualizer') is None:
                raise RuntimeError(
                    '--show-dir needs a visualizer in the config (mmseg\'s '
                    'default_runtime has a SegLocalVisualizer)')
            cfg.visualizer.save_dir = args.show_dir


def _has_masks(model_cfg):
    """Whether a detector config predicts masks (has a ``mask_head``)."""
    if isinstance(model_cfg, dict):
        if model_cfg.get('mask_head') is not None:
            return True
        return any(_has_masks(v) for v in model_cfg.values())
    if isinstance(model_cfg, (list, tuple)):
        return any(_has_masks(v) for v in model_cfg)
    return False


def _innermost_dataset(dataset_cfg):
    while 'dataset' in dataset_cfg:
        dataset_cfg = dataset_cfg['dataset']
    return dataset_cfg


def use_tta(cfg, library):
    """Wrap ``cfg.model`` in the TTA model and test with the TTA pipeline,
    as the library's own test.py does (changes ``cfg`` in place).

    Raises:
        ValueError: For a detector with masks (MMDetection's TTA merges
            boxes only) and for an mmseg config without ``tta_model`` or
            ``tta_pipeline``.
    """
    if library == 'mmdet' and _has_masks(cfg.model):
        raise ValueError(
            '--tta: MMDetection has no test-time augmentation for instance '
            'segmentation (its DetTTAModel merges boxes only), and this '
            'config\'s model has a mask_head')
    if library == 'mmseg':
        missing = [k for k in ('tta_model', 'tta_pipeline') if k not in cfg]
        if missing:
            raise ValueError(
                f'--tta: the config has no {" and no ".join(missing)} '
                '(mmseg\'s default_runtime gives tta_model, its dataset '
                'bases tta_pipeline)')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
        return
    if 'tta_model' not in cfg:
        warnings.warn('--tta: no tta_model in the config; averaging flips')
        cfg.tta_model = dict(type='mmpretrain.AverageClsScoreTTA') \
            if library == 'mmpretrain' else dict(
                type='DetTTAModel',
                tta_cfg=dict(
                    nms=dict(type='nms', iou_threshold=0.5),
                    max_per_img=100))
    if 'tta_pipeline' not in cfg:
        warnings.warn('--tta: no tta_pipeline in the config; testing '
                      'flipped and unflipped images')
        if library == 'mmpretrain':
            test_pipeline = cfg.test_dataloader.dataset.pipeline
            pack = test_pipeline[-1]
        else:
            test_pipeline = _innermost_dataset(
                cfg.test_dataloader.dataset).pipeline
            pack = dict(
                type='PackDetInputs',
                meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                           'scale_factor', 'flip', 'flip_direction'))
        cfg.tta_pipeline = deepcopy(test_pipeline)
        cfg.tta_pipeline[-1] = dict(
            type='TestTimeAug',
            transforms=[[
                dict(type='RandomFlip', prob=1.),
                dict(type='RandomFlip', prob=0.)
            ], [pack]])
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline


def set_seg_output_dir(cfg, out_dir):
    """Make mmseg's ``IoUMetric`` in ``cfg.test_evaluator`` write the
    predictions as PNGs into ``out_dir`` (``output_dir``,
    ``keep_results``), as mmseg's test.py ``--out`` does."""
    evaluators = cfg.test_evaluator
    if isinstance(evaluators, dict):
        evaluators = [evaluators]
    for evaluator in evaluators:
        evaluator['output_dir'] = out_dir
        evaluator['keep_results'] = True


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} does not exist')
    cfg = load_config(args)
    library = library_of(cfg, args)
    if args.out_item is not None and library != 'mmpretrain':
        raise ValueError('--out-item: only mmpretrain configs have it; '
                         f'this one is {library}\'s')
    if args.out_item is not None and args.out is None:
        raise ValueError('--out-item needs --out, the file to write')
    if args.out is not None and library == 'mmdet' and \
            not args.out.endswith(('.pkl', '.pickle')):
        raise ValueError('--out: MMDetection dumps to a .pkl or .pickle file')
    cfg.load_from = args.checkpoint
    if args.amp:
        cfg.test_cfg = cfg.get('test_cfg') or {}
        cfg.test_cfg.fp16 = True
    if args.show or args.show_dir:
        trigger_visualization_hook(cfg, args, library)
    if args.tta:
        use_tta(cfg, library)
    if args.out is not None and library == 'mmseg':
        set_seg_output_dir(cfg, args.out)
    runner = Runner.from_cfg(cfg)
    if args.out is not None and library == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(
            DumpDetResults(out_file_path=args.out))
    elif args.out is not None and library != 'mmseg' and \
            args.out_item in ('pred', None):
        from mmengine.evaluator import DumpResults
        runner.test_evaluator.metrics.append(
            DumpResults(out_file_path=args.out))
    # The checkpoint loads weights-only, also with a config that lacks
    # sdt3_mm.SafeCheckpointLoadingHook.
    with safe_checkpoint_loading():
        metrics = runner.test()
    print(metrics)
    if args.out is not None and args.out_item == 'metrics':
        import mmengine
        mmengine.dump(metrics, args.out)


if __name__ == '__main__':
    main()
