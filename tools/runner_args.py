"""What tools/train.py and tools/test.py share: their common arguments,
the config set-up, strict checkpoint loading and, without GPUs, the gloo
launch.

Imported by those scripts from their own folder (Python puts a script's
folder on ``sys.path``), so they run from any working directory and
through tools/dist_train.sh alike.
"""
import os
import os.path as osp

import torch
from mmengine.config import Config, DictAction


def add_common_arguments(parser):
    """Add ``config``, ``--work-dir``, ``--amp``, ``--cfg-options``,
    ``--launcher``, ``--local_rank`` and ``--allow-mismatch`` to
    ``parser``."""
    parser.add_argument('config', help='config file')
    parser.add_argument('--work-dir', help='where logs and results go')
    parser.add_argument(
        '--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value (a.b=1, list=[1,2])')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument(
        '--allow-mismatch',
        nargs='+',
        metavar='PATTERN',
        help='state-dict keys (fnmatch patterns, e.g. "head.*") that may '
        'differ between the checkpoint and the model: missing, unknown or '
        'of another shape; the checkpoint is otherwise loaded strictly')


def load_config(args):
    """Read ``args.config`` and apply the common arguments to it.

    Args:
        args (argparse.Namespace): Parsed arguments of
            :func:`add_common_arguments`.

    Returns:
        Config: The config, with ``launcher`` and ``work_dir`` set
        (``./work_dirs/<config name>`` by default) and strict checkpoint
        loading (see :func:`use_strict_loading`). With the ``pytorch``
        launcher on a machine without CUDA, the gloo process group is
        started here (see :func:`init_cpu_distributed`).
    """
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config {args.config} does not exist')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    use_strict_loading(cfg, args.allow_mismatch)
    if cfg.launcher == 'pytorch' and not torch.cuda.is_available():
        init_cpu_distributed(cfg)
    return cfg


_STRICT_HOOK_TYPES = ('sdt3_mm.StrictLoadingHook', 'StrictLoadingHook')


def use_strict_loading(cfg, allowed_mismatches=None):
    """Make the run refuse checkpoints that do not fit the model.

    Adds ``sdt3_mm.StrictLoadingHook`` to ``cfg.custom_hooks`` unless the
    config has it; ``allowed_mismatches``, when given, replaces the
    hook's. Our tools load ``load_from``, ``--resume`` and the tested
    checkpoint strictly whatever the config says.

    Args:
        cfg (Config): The run's config, changed in place.
        allowed_mismatches (list[str], optional): ``fnmatch`` patterns of
            keys that may differ (``--allow-mismatch``).
    """
    hooks = list(cfg.get('custom_hooks') or [])
    strict = [h for h in hooks if h.get('type') in _STRICT_HOOK_TYPES]
    if not strict:
        strict = [dict(type='sdt3_mm.StrictLoadingHook')]
        hooks += strict
    if allowed_mismatches is not None:
        for hook in strict:
            hook['allowed_mismatches'] = list(allowed_mismatches)
    cfg.custom_hooks = hooks


def init_cpu_distributed(cfg):
    """Let mmengine's DDP run on CPU processes started by torchrun.

    mmengine 0.10.7 assumes a GPU per process: its ``init_dist`` calls
    ``torch.cuda.set_device`` and its DDP wrapper passes ``device_ids``.
    On a machine without CUDA we start the gloo process group ourselves
    (the runner then skips ``init_dist``) and wrap the model without
    device ids. Parameters stay identical on every rank; BN running
    statistics are each rank's own, as with mmengine's default
    ``broadcast_buffers=False`` on GPUs (checkpoints hold rank 0's).
    """
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    cfg.env_cfg = cfg.get('env_cfg') or {}
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            device_ids=None,
            broadcast_buffers=False)
