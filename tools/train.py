"""Train a model from an OpenMMLab config (classification, detection or
segmentation alike: the config's ``default_scope`` picks the library).

Example::

    python tools/train.py configs/demo/e-spikeformer-t_shapes-cls.py
    python tools/train.py CONFIG --resume            # the latest checkpoint
    python tools/train.py CONFIG --resume PATH --amp --work-dir DIR
    python tools/train.py CONFIG --amp --amp-dtype bf16   # GPU or CPU
    python tools/train.py CONFIG --compile           # torch.compile forward
"""
import argparse
import os.path as osp

from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from runner_args import add_common_arguments, load_config

import sdt3_mm  # noqa: F401  (registries)
from sdt3_mm.reliability import (check_mid_epoch_resume, checkpoint_defect,
                                 find_resumable_checkpoint,
                                 safe_checkpoint_loading)
from sdt3_mm.utils import use_mixed_precision


def parse_args():
    parser = argparse.ArgumentParser(description='Train a model')
    add_common_arguments(parser)
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from PATH, or from the latest checkpoint in the work '
        'dir when no path is given')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by the actual total batch size')
    parser.add_argument(
        '--amp-dtype',
        choices=['fp16', 'bf16'],
        help='with --amp: fp16 (loss-scaled, GPU only; the default on a GPU) '
        'or bf16 (any device; the default on CPU)')
    parser.add_argument(
        '--compile',
        action='store_true',
        help='torch.compile the model\'s forward (in place: parameter '
        'names and checkpoints are unchanged; the optimizer step stays '
        'eager)')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='skip validation during training')
    return parser.parse_args()


def set_resume(cfg, resume):
    """Point ``cfg`` at the checkpoint to resume from.

    Args:
        cfg (Config): The run's config (``work_dir`` set).
        resume (str): ``'auto'`` (``--resume`` without a path): the
            checkpoint :func:`~sdt3_mm.reliability.find_resumable_checkpoint`
            finds in the work dir, or, if there is none, a fresh run as the
            config says (``load_from`` left as it is). Otherwise the path
            of a local checkpoint.

    Raises:
        FileNotFoundError: If the checkpoint ``resume`` does not exist.
        ValueError: If it is incomplete (a truncated write, say); the
            message names the newest complete checkpoint next to it.
    """
    if resume == 'auto':
        # mmengine's own search trusts last_checkpoint blindly and trains
        # from scratch without one; ours checks files and falls back.
        checkpoint = find_resumable_checkpoint(cfg.work_dir)
        if checkpoint is None:
            weights = (f', with the weights of load_from={cfg.load_from}'
                       if cfg.get('load_from') else '')
            print(f'--resume: no checkpoint to resume from in '
                  f'{cfg.work_dir}; training from scratch{weights}.')
            cfg.resume = False
        else:
            cfg.resume = True
            cfg.load_from = checkpoint
        return
    defect = checkpoint_defect(resume)
    if defect == 'missing':
        raise FileNotFoundError(
            f'--resume: checkpoint {resume} does not exist')
    if defect is not None:
        newest = find_resumable_checkpoint(
            osp.dirname(resume) or '.', logger='silent')
        hint = (f'the newest complete checkpoint in its folder is {newest}'
                if newest else 'there is no complete checkpoint next to it')
        raise ValueError(f'--resume: checkpoint {resume} is {defect}: an '
                         f'incomplete file, not resumable; {hint}')
    cfg.resume = True
    cfg.load_from = resume


def main():
    args = parse_args()
    cfg = load_config(args)
    if args.amp:
        use_mixed_precision(cfg, args.amp_dtype)
    elif args.amp_dtype:
        raise ValueError('--amp-dtype is given without --amp')
    if args.resume is not None:
        set_resume(cfg, args.resume)
        # mmengine's epoch loop would train a mid-epoch checkpoint's
        # epoch again from its start: refuse before building anything.
        check_mid_epoch_resume(cfg)
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg:
            raise KeyError('--auto-scale-lr: the config has no '
                           'auto_scale_lr.base_batch_size')
        cfg.auto_scale_lr.enable = True
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    runner = Runner.from_cfg(cfg)
    if args.compile:
        # mmengine's own `compile=True` compiles train_step, optimizer step
        # included, which dynamo in torch 2.13 fails to trace (AdamW's
        # param groups); compiling the forward alone works.
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        model.compile()
    # Runner checkpoints (--resume, load_from) load weights-only, also
    # with a config that lacks sdt3_mm.SafeCheckpointLoadingHook.
    with safe_checkpoint_loading():
        runner.train()


if __name__ == '__main__':
    main()
