"""Refusing runner checkpoints that do not fit the model."""
import fnmatch
import re

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import BaseTTAModel, is_model_wrapper

from sdt3_mm.registry import HOOKS
from .checkpoint_content import check_checkpoint_content

# mmengine's runner strips this prefix (DDP's) from checkpoint keys before
# loading (``Runner.load_checkpoint``'s default ``revise_keys``).
_WRAPPER_PREFIX = re.compile(r'^module\.')


def checkpoint_mismatches(model, checkpoint, allowed=()):
    """How a checkpoint's state dict differs from ``model``'s.

    Keys are compared after mmengine's runner revision (a leading
    ``module.`` removed); like mmengine, a missing ``num_batches_tracked``
    is not a difference (old BN checkpoints lack it).

    Args:
        model (nn.Module): The model (not a wrapper).
        checkpoint (dict): A runner checkpoint (``state_dict`` inside) or a
            plain state dict.
        allowed (Sequence[str]): ``fnmatch`` patterns of keys whose
            differences are reported apart, as allowed.

    Returns:
        tuple[list[str], list[str]]: Descriptions of the differences that
        are not allowed, and of those that are; each names the key and,
        for a size mismatch, both shapes.
    """
    # What mmengine's runner copies into the model (its
    # _load_checkpoint_to_model): 'state_dict' if there, else the whole
    # checkpoint; not model_state_dict(), which also reads an official
    # checkpoint's 'model' that the runner does not.
    state_dict = checkpoint.get('state_dict', checkpoint)
    loaded = {
        _WRAPPER_PREFIX.sub('', key): value
        for key, value in state_dict.items()
    }
    expected = model.state_dict()
    differences = []
    for key in expected.keys() - loaded.keys():
        if not key.endswith('num_batches_tracked'):
            differences.append((key, f'missing from the checkpoint: {key}'))
    for key in loaded.keys() - expected.keys():
        differences.append((key, f'not in the model: {key}'))
    for key in expected.keys() & loaded.keys():
        ours, theirs = expected[key], loaded[key]
        shape = getattr(theirs, 'shape', None)
        if shape is not None and tuple(shape) != tuple(ours.shape):
            differences.append(
                (key, f'size mismatch: {key} is {tuple(shape)} in the '
                 f'checkpoint and {tuple(ours.shape)} in the model'))
    refused, tolerated = [], []
    for key, text in sorted(differences):
        matched = any(fnmatch.fnmatchcase(key, p) for p in allowed)
        (tolerated if matched else refused).append(text)
    return refused, tolerated


def _loaded_source(runner):
    """How to name the checkpoint the runner has just loaded."""
    cfg = getattr(runner, 'cfg', None) or {}
    if cfg.get('load_from'):
        return str(cfg['load_from'])
    # (resume=True without load_from: mmengine's latest checkpoint)
    return (f'(the latest checkpoint in '
            f'{getattr(runner, "work_dir", "the work dir")})')


@HOOKS.register_module()
class StrictLoadingHook(Hook):
    """Refuse a runner checkpoint whose state dict does not fit the model.

    mmengine's runner loads ``load_from``, ``--resume`` and ``test.py``
    checkpoints non-strictly: missing keys, unknown keys and tensors of
    another shape only produce warnings, and the run goes on with those
    parameters at their initial values (a 6-class checkpoint tested with
    10 classes prints an accuracy). In ``after_load_checkpoint``, which
    the runner calls for each of them before it copies the weights, this
    hook raises instead, naming every differing key and both shapes.

    Fine-tuning that replaces part of the model (a new head) names those
    keys in ``allowed_mismatches``; their differences are logged by name
    and the rest must still match. ``tools/train.py --allow-mismatch``
    sets it. Use it in any config as::

        custom_hooks = [dict(type='sdt3_mm.StrictLoadingHook')]
        # fine-tuning with a new classifier:
        custom_hooks = [dict(type='sdt3_mm.StrictLoadingHook',
                             allowed_mismatches=['head.fc.*'])]

    Backbone ``init_cfg=dict(type='Pretrained', ...)`` does not go through
    the runner's loading and is not affected.

    Args:
        allowed_mismatches (Sequence[str]): ``fnmatch`` patterns of
            state-dict keys that may be missing, unknown or of another
            shape. Defaults to none.

    Before comparing, it checks what was loaded with
    :func:`~.checkpoint_content.check_checkpoint_content` (as sdt3_mm's loaders
    do), so that a checkpoint read by mmengine's own loader is refused as
    well when it is not a dict or its model weights hold NaN or Inf.

    Raises:
        TypeError: In ``after_load_checkpoint``, if the checkpoint is not a
            dict (the file, ``load_from``, is named).
        ValueError: In ``after_load_checkpoint``, if a tensor of the
            model's state dict holds NaN or Inf (named, with the file).
        RuntimeError: In ``after_load_checkpoint``, when a key outside
            ``allowed_mismatches`` differs.
    """

    # After hooks that adapt the loaded checkpoint (EMAHook and the like).
    priority = 'LOW'

    def __init__(self, allowed_mismatches=()):
        if isinstance(allowed_mismatches, str):
            allowed_mismatches = [allowed_mismatches]
        self.allowed_mismatches = list(allowed_mismatches)

    def after_load_checkpoint(self, runner, checkpoint):
        # With sdt3_mm's loaders the file was checked when it was read
        # (safe_torch_load); mmengine's own loaders check nothing, and a
        # pickled list or NaN weights would otherwise load (or fail with
        # an AttributeError here).
        check_checkpoint_content(checkpoint, _loaded_source(runner))
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        # A test-time-augmentation model loads the checkpoint into the
        # model it wraps, as mmengine's load_state_dict does.
        if isinstance(model, BaseTTAModel):
            model = model.module
        refused, tolerated = checkpoint_mismatches(model, checkpoint,
                                                   self.allowed_mismatches)
        if tolerated:
            print_log(
                f'{len(tolerated)} state-dict difference(s) allowed by '
                f'allowed_mismatches={self.allowed_mismatches} (these '
                'parameters keep their initial values):\n  ' +
                '\n  '.join(tolerated),
                logger='current')
        if refused:
            raise RuntimeError(
                'the checkpoint does not fit the model '
                f'({type(model).__name__}): {len(refused)} difference(s)'
                ':\n  ' + '\n  '.join(refused) + '\nWas it trained with '
                'another config (architecture, number of classes)? To '
                'fine-tune with a replaced part, allow its keys: '
                "tools/train.py --allow-mismatch 'head.*' or "
                "dict(type='sdt3_mm.StrictLoadingHook', "
                "allowed_mismatches=['head.*']).")
