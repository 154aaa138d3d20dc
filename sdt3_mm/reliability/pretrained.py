"""Strict loading of pretrained weights into an ESpikeFormer."""
import os.path as osp
import pickle
import re

from mmengine.logging import MMLogger

from .checkpoint_content import model_state_dict
from .official_checkpoint import (convert_official_state_dict,
                                  is_official_state_dict, summarize_keys)
from .safe_loading import CheckpointFileError, safe_checkpoint_loader


def read_state_dict(checkpoint):
    """Read the state dict of a checkpoint file or URL, weights-only.

    Accepts a flat state dict or one under ``'state_dict'`` (mmengine) or
    ``'model'`` (the official training code). The file is always read with
    sdt3_mm's weights-only loader of its scheme (see
    :func:`~.safe_loading.safe_checkpoint_loader`),
    whether or not safe loading is switched on for mmengine: no code in
    the file runs, whatever its source (path, URL, ``open-mmlab://``...).

    Args:
        checkpoint (str): Path or URL.

    Returns:
        dict: The state dict.

    Raises:
        FileNotFoundError: If a local file does not exist.
        pickle.UnpicklingError: If the file needs globals a weights-only
            load refuses (named, with the file).
        CheckpointFileError: If the file cannot be read (empty,
            truncated, damaged, not a PyTorch file); a RuntimeError.
        RuntimeError: If the download failed, or another plugin's loader
            is registered for its scheme.
        TypeError: If it holds something other than a dict.
        ValueError: If its weights hold NaN or Inf (named).
    """
    is_remote = re.match(r'^[a-z][a-z0-9+.-]*://', checkpoint) is not None
    if not is_remote and not osp.isfile(osp.expanduser(checkpoint)):
        raise FileNotFoundError(f'checkpoint {checkpoint} does not exist')
    load = safe_checkpoint_loader(checkpoint)
    try:
        loaded = load(checkpoint, map_location='cpu')
    except (FileNotFoundError, pickle.UnpicklingError, CheckpointFileError,
            TypeError, ValueError):
        # All name the file already: a missing file, a refusal, a damaged
        # file, and what safe_torch_load's content check refuses (not a
        # dict, NaN or Inf in the weights).
        raise
    except Exception as error:  # a failed download, say
        raise RuntimeError(f'could not read checkpoint {checkpoint}: '
                           f'{type(error).__name__}: {error}') from error
    return model_state_dict(loaded)


def describe_arch(state_dict):
    """Family, stage widths, stage-3 depth and rep_conv of a state dict.

    Args:
        state_dict (dict): ESpikeFormer state dict (our names).

    Returns:
        dict: ``family``, ``stage_channels``, ``depth`` and ``rep_conv``.
    """
    widths, depth = {}, set()
    for key, value in state_dict.items():
        match = re.fullmatch(r'downsample_layers\.(\d+)\.conv\.weight', key)
        if match:
            widths[int(match[1])] = value.shape[0]
        match = re.match(r'stages\.3\.(\d+)\.', key)
        if match:
            depth.add(int(match[1]))
    if any('.attn.q.conv.dwconv.' in k for k in state_dict):
        family = 'meta'  # RepConv projections
    elif not any('.sepconv.' in k for k in state_dict):
        family = 'large'  # the only family without SepConvs
    else:
        family = 'base'  # with or without layer scales
    return dict(
        family=family,
        stage_channels=[widths[i] for i in sorted(widths)],
        depth=len(depth),
        rep_conv=any('.rep_conv.' in k for k in state_dict))


def _arch_name(arch, backbone_cls):
    for name, preset in backbone_cls.arch_zoo.items():
        depths, channels, _ = backbone_cls.stage_layout(preset)
        if (preset['family'] == arch['family']
                and channels == arch['stage_channels']
                and depths[3] == arch['depth']
                and preset.get('rep_conv', False) == arch['rep_conv']):
            return f"preset '{name}'"
    return 'a custom arch'


def _describe(arch, backbone_cls):
    return (
        f"{_arch_name(arch, backbone_cls)}: {arch['family']} family, stage "
        f"widths {arch['stage_channels']}, {arch['depth']} stage-3 "
        f"blocks{', rep_conv' if arch['rep_conv'] else ''}")


def _natural(key):
    """Sort key with numbers compared as numbers (stages.3.10 after 3.9)."""
    return [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', key)]


def load_pretrained_backbone(model, checkpoint, prefix=None):
    """Load a checkpoint into an ESpikeFormer, strictly.

    One exception, named in the log: a base-family backbone with layer
    scales (``layer_scale_init_value``) loads a checkpoint without them
    (an ImageNet one), every layer scale keeping its initial value; any
    other missing key still raises.

    Args:
        model (ESpikeFormer): The backbone.
        checkpoint (str): Path or URL of one of our checkpoints or an
            official one (names converted on the fly).
        prefix (str, optional): Prefix of the backbone's keys, such as
            ``'backbone.'``. Defaults to ``'backbone.'`` when the checkpoint
            has such keys, else none.

    Raises:
        KeyError: If the prefix matches nothing, or keys are missing or
            unexpected (all are named).
        ValueError: If the checkpoint holds another architecture (both are
            named) or a tensor of another shape.
    """
    logger = MMLogger.get_current_instance()
    state = read_state_dict(checkpoint)
    if prefix is None and any(k.startswith('backbone.') for k in state):
        prefix = 'backbone.'
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        stripped = {
            k[len(prefix):]: v
            for k, v in state.items() if k.startswith(prefix)
        }
        if stripped:
            state = stripped
        elif is_official_state_dict(state):
            # A config written for converted checkpoints, given an
            # official one: its names carry no prefix.
            logger.info(f'{checkpoint} is an official checkpoint; its keys '
                        f'have no {prefix!r} prefix')
        else:
            raise KeyError(
                f'no key of checkpoint {checkpoint} starts with {prefix!r}')
    if is_official_state_dict(state):
        state, head = convert_official_state_dict(state)
        logger.info(f'{checkpoint}: converted official E-SpikeFormer names; '
                    f'the backbone leaves the head keys {sorted(head)} alone')

    expected = model.state_dict()
    loaded_arch, model_arch = describe_arch(state), describe_arch(expected)
    if loaded_arch['stage_channels'] and loaded_arch != model_arch:
        raise ValueError(
            f'checkpoint {checkpoint} holds a backbone of '
            f'{_describe(loaded_arch, type(model))}, but the model is '
            f'{_describe(model_arch, type(model))}')
    missing = set(expected) - set(state)
    unexpected = set(state) - set(expected)
    # A base-family backbone built with layer scales (the reference's
    # segmentation and event models) from an ImageNet checkpoint, which has
    # none: they keep their initial value; everything else loads strictly.
    initialised = set()
    if model.arch_settings['family'] == 'base' and \
            model.layer_scale_init_value is not None:
        initialised = {
            k
            for k in missing
            if re.fullmatch(r'stages\.\d+\.\d+\.layer_scale[123]', k)
        }
        missing -= initialised
    if missing or unexpected:
        raise KeyError(
            f'checkpoint {checkpoint} does not match {type(model).__name__}: '
            f'{len(missing)} missing keys ({summarize_keys(missing)}), '
            f'{len(unexpected)} unexpected keys ({summarize_keys(unexpected)})'
        )
    wrong_shapes = [
        f'{k}: checkpoint {tuple(v.shape)}, model '
        f'{tuple(expected[k].shape)}' for k, v in state.items()
        if v.shape != expected[k].shape
    ]
    if wrong_shapes:
        raise ValueError(f'checkpoint {checkpoint} has tensors of other '
                         f'shapes: {summarize_keys(wrong_shapes)}')
    result = model.load_state_dict(state, strict=False)
    assert set(result.missing_keys) == initialised and \
        not result.unexpected_keys, result
    logger.info(f'loaded {len(state)} backbone tensors from {checkpoint}')
    if initialised:
        logger.info(
            f'{checkpoint} has no layer scales: the {len(initialised)} layer '
            f'scales of the transformer blocks keep their initial value '
            f'{model.layer_scale_init_value:g}: '
            f'{", ".join(sorted(initialised, key=_natural))}')
