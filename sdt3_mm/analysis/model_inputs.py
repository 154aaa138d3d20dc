"""Models and inputs for the analysis tools: a config with its test data,
or a backbone preset with random images (their command-line arguments are
in ``tools/analysis_tools/model_inputs.py``)."""
import math
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner, load_checkpoint

from sdt3_mm.registry import MODELS as SDT3_MODELS
from sdt3_mm.registry import build_in_scope
from sdt3_mm.reliability import (load_pretrained_backbone,
                                 safe_checkpoint_loading)

#: The backbone a preset name builds, by its registered name.
PRESET_BACKBONE = 'ESpikeFormer'


def build_analysis_model(target, checkpoint=None, cfg_options=None):
    """Build the model to analyse, in evaluation mode.

    Args:
        target (str): A config file (any OpenMMLab model made of our
            modules) or an :class:`ESpikeFormer` preset name (all taps
            returned).
        checkpoint (str, optional): Weights to load, weights-only and
            checked as :func:`~sdt3_mm.reliability.safe_torch_load` does;
            every key must match.
        cfg_options (dict, optional): Overrides merged into the config.

    Returns:
        tuple[nn.Module, Config | None]: The model and its config (None
        for a preset).
    """
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint} does not exist')
    if osp.isfile(target):
        cfg = Config.fromfile(target)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        init_default_scope(cfg.get('default_scope', 'sdt3_mm'))
        model_cfg = cfg.model.copy()
        # As mmengine's Runner does: a top-level data_preprocessor applies
        # unless the model names its own.
        if cfg.get('data_preprocessor') is not None:
            model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
        model = MODELS.build(model_cfg)
        if checkpoint is not None:
            # Weights-only, and checked (CRCs, finite weights), whoever
            # calls this: sdt3_mm's loaders for the length of the load.
            with safe_checkpoint_loading():
                load_checkpoint(
                    model, checkpoint, map_location='cpu', strict=True)
        return model.eval(), cfg
    presets = SDT3_MODELS.get(PRESET_BACKBONE).arch_zoo
    if target.lower() not in presets:
        raise FileNotFoundError(
            f'{target} is neither a config file nor an {PRESET_BACKBONE} '
            f'preset ({", ".join(sorted(presets))})')
    model = build_in_scope(SDT3_MODELS, dict(type=PRESET_BACKBONE,
                                             arch=target))
    model.out_indices = tuple(range(model.num_taps))
    if checkpoint is not None:
        load_pretrained_backbone(model, checkpoint)
    return model.eval(), None


def analysis_batches(model, cfg, num_images, size=(224, 224), batch_size=8):
    """Yield preprocessed batches, ``dict(inputs=..., data_samples=...)``,
    until ``num_images`` images were given.

    With a config, the images come from its test dataloader (the demo
    datasets write themselves on first use); for a preset they are random
    normal ``size`` images and ``data_samples`` is None.
    """
    if num_images < 1:
        raise ValueError(f'num_images must be positive, got {num_images}')
    batch_size = min(batch_size, num_images)
    num_batches = math.ceil(num_images / batch_size)
    if cfg is None:
        generator = torch.Generator().manual_seed(0)
        for _ in range(num_batches):
            yield dict(
                inputs=torch.randn(batch_size, 3, *size, generator=generator),
                data_samples=None)
        return
    loader_cfg = cfg.test_dataloader.copy()
    loader_cfg.update(
        batch_size=batch_size, num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg)
    for i, data in enumerate(loader):
        if i == num_batches:
            break
        yield model.data_preprocessor(data, False)
