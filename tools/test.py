"""Evaluate a checkpoint with an OpenMMLab config (classification,
detection or segmentation alike: the config's ``default_scope`` picks the
library).

Example::

    python tools/test.py configs/demo/e-spikeformer-t_shapes-cls.py \
        work_dirs/e-spikeformer-t_shapes-cls/epoch_20.pth
"""
import argparse
import os.path as osp

from mmengine.runner import Runner
from runner_args import add_common_arguments, load_config

import sdt3_mm  # noqa: F401  (registries)
from sdt3_mm.utils import safe_checkpoint_loading


def parse_args():
    parser = argparse.ArgumentParser(description='Test (evaluate) a model')
    add_common_arguments(parser)
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out', help='dump the predictions to this pickle file')
    return parser.parse_args()


def main():
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} does not exist')
    cfg = load_config(args)
    cfg.load_from = args.checkpoint
    if args.amp:
        cfg.test_cfg = cfg.get('test_cfg') or {}
        cfg.test_cfg.fp16 = True
    runner = Runner.from_cfg(cfg)
    if args.out is not None:
        from mmengine.evaluator import DumpResults
        runner.test_evaluator.metrics.append(
            DumpResults(out_file_path=args.out))
    # The checkpoint loads weights-only, also with a config that lacks
    # sdt3_mm.SafeCheckpointLoadingHook.
    with safe_checkpoint_loading():
        print(runner.test())


if __name__ == '__main__':
    main()
