"""Turn a checkpoint that training wrote into a published weights file, as
OpenMMLab's ``publish_model.py`` does (MMPretrain's and MMDetection's ship
one): ``state_dict`` and a small ``meta`` only, written as
``<out name>-<first 8 hex digits of its sha256>.pth``.

A runner checkpoint also holds the optimizer state, the parameter
schedulers and mmengine's ``message_hub``, whose ``HistoryBuffer`` objects
torch 2.13's default ``torch.load(weights_only=True)`` refuses, so the
libraries' own loaders (``benchmark.py``, the inferencers, MMPretrain's
``get_model``) cannot read it unless sdt3_mm's safe loading is switched
on. The published file holds tensors and plain Python values only, and is
checked to load with ``torch.load(weights_only=True)`` and nothing else
allowed before it is named.

The input is read with :func:`sdt3_mm.reliability.safe_torch_load`
(weights-only, with exactly mmengine's runner-checkpoint classes allowed).
``meta`` keeps ``dataset_meta`` (the class names and palette the
inferencers show), ``epoch``, ``iter`` and ``mmengine_version``, and adds
``sdt3_mm_version``; the rest (the config text, seed, experiment name and
time) is dropped. With mmengine's ``EMAHook`` the runner keeps the averaged
weights in ``state_dict`` and the trained ones in ``ema_state_dict``; the
averaged ones are published unless ``--no-ema`` is given.

Example::

    python tools/model_converters/publish_model.py \\
        work_dirs/e-spikeformer-t_shapes-cls/epoch_20.pth \\
        published/e-spikeformer-t_shapes-cls.pth
    # -> published/e-spikeformer-t_shapes-cls-<sha256[:8]>.pth
"""
import argparse
import hashlib
import io
import os
import os.path as osp
import pickle
import warnings

import torch

from sdt3_mm.reliability import safe_torch_load, write_atomic
from sdt3_mm.version import __version__

# What meta keeps of a runner checkpoint's meta.
META_KEYS = ('dataset_meta', 'epoch', 'iter', 'mmengine_version')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Keep the weights of a checkpoint and name the file by '
        'its sha256, for publishing')
    parser.add_argument(
        'in_file', help='checkpoint (a runner checkpoint or '
        'a state dict)')
    parser.add_argument(
        'out_file',
        help='output name; the file written is <out_file without .pth>-'
        '<sha256[:8]>.pth (folders are made)')
    parser.add_argument(
        '--no-ema',
        action='store_true',
        help='for a checkpoint of a run with EMAHook: publish the trained '
        'weights (its ema_state_dict) instead of the averaged ones')
    return parser.parse_args(argv)


def _weights_of(checkpoint, in_file, no_ema):
    """The state dict to publish.

    Raises:
        ValueError: If ``checkpoint`` is neither a state dict nor a dict
            with a ``state_dict`` of tensors; with ``no_ema``, if it has
            no ``ema_state_dict`` or that does not match ``state_dict``.
    """
    if not isinstance(checkpoint, dict):
        raise ValueError(f'{in_file}: a checkpoint is a dict, got a '
                         f'{type(checkpoint).__name__}')
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, dict) or not state_dict:
        what = 'an empty dict' if isinstance(state_dict, dict) else \
            f'a {type(state_dict).__name__}'
        raise ValueError(f'{in_file}: its state_dict is {what}, not a dict '
                         f'of tensors')
    others = sorted(
        str(k) for k, v in state_dict.items()
        if not isinstance(v, torch.Tensor))
    if others:
        raise ValueError(
            f'{in_file} is neither a state dict nor a checkpoint with a '
            f'state_dict of tensors (keys that are not tensors: '
            f'{others[:5]})')
    if not no_ema:
        return dict(state_dict)
    ema = checkpoint.get('ema_state_dict')
    if ema is None:
        raise ValueError(f'--no-ema: {in_file} has no ema_state_dict (it '
                         f'was not trained with EMAHook)')
    # EMAHook swapped the trained weights into ema_state_dict under the
    # names of its AveragedModel ("module." + the model's name).
    trained = {k[7:]: v for k, v in ema.items() if k.startswith('module.')}
    if trained.keys() - state_dict.keys():
        raise ValueError(
            f'--no-ema: the ema_state_dict of {in_file} has weights the '
            f'model has not: {sorted(trained.keys() - state_dict.keys())[:5]}')
    return {**state_dict, **trained}


def publish(in_file, out_file, no_ema=False):
    """Write the weights of ``in_file`` as ``<out_file>-<sha256[:8]>.pth``.

    Args:
        in_file (str): A runner checkpoint (``meta``, ``state_dict`` and
            training state) or a plain state dict.
        out_file (str): The output name; ``.pth`` at its end is replaced by
            ``-<sha256[:8]>.pth``. Its folder is made if missing.
        no_ema (bool): Publish the trained weights of a run with
            ``EMAHook`` (its ``ema_state_dict``) rather than the averaged
            ones.

    Returns:
        tuple[str, list[str]]: The path written and the top-level keys of
        the input that were left out (training state and the like).

    Raises:
        FileNotFoundError: If ``in_file`` does not exist.
        pickle.UnpicklingError: If ``in_file`` needs more than a runner
            checkpoint's classes to load (see ``safe_torch_load``), or if
            its ``meta`` kept values that the weights-only unpickler
            refuses (nothing is written then).
        ValueError: See :func:`_weights_of`.
    """
    if not osp.isfile(in_file):
        raise FileNotFoundError(f'checkpoint {in_file} does not exist')
    checkpoint = safe_torch_load(in_file, map_location='cpu')
    state_dict = _weights_of(checkpoint, in_file, no_ema)
    if 'state_dict' in checkpoint:
        old_meta = checkpoint.get('meta') or {}
        dropped = sorted(
            k for k in checkpoint if k not in ('meta', 'state_dict'))
    else:  # a plain state dict
        old_meta, dropped = {}, []
    meta = {k: old_meta[k] for k in META_KEYS if k in old_meta}
    meta['sdt3_mm_version'] = __version__
    if 'dataset_meta' not in meta:
        warnings.warn(f'{in_file} has no meta.dataset_meta: the inferencers '
                      f'will take the class names from the config')
    dropped += [f'meta.{k}' for k in sorted(old_meta) if k not in meta]

    # Serialised in memory (torch names the archive after the file it
    # writes to, so the bytes and the sha256 would depend on a temporary
    # name) and checked to load weights-only before anything is written.
    buffer = io.BytesIO()
    torch.save(dict(meta=meta, state_dict=state_dict), buffer)
    data = buffer.getvalue()
    try:
        torch.load(io.BytesIO(data), map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as error:
        raise pickle.UnpicklingError(
            f'{in_file}: the published weights would not load with '
            f'torch.load(weights_only=True): {error}') from error
    stem = out_file[:-4] if out_file.endswith('.pth') else out_file
    final = f'{stem}-{hashlib.sha256(data).hexdigest()[:8]}.pth'
    os.makedirs(osp.dirname(osp.abspath(final)), exist_ok=True)
    # Renamed into place once complete: no half-written file under the
    # final name.
    write_atomic(final, data)
    return final, dropped


def main(argv=None):
    args = parse_args(argv)
    final, dropped = publish(args.in_file, args.out_file, args.no_ema)
    if dropped:
        print(f'left out: {", ".join(dropped)}')
    print(f'published {final}')


if __name__ == '__main__':
    main()
