"""Run the original code on the reference cases and store its outputs.

The weights and inputs come from the seed scheme of ``tests/reference_cases.py``;
this script runs BICLab's original model code on them and writes only the
outputs (and SHA-256 fingerprints of what it ran on) to
``tests/data/reference_cases/<case>.pth``. It also writes the key list of
the small Meta-SpikeFormer case, read from the original model.

The original code imports timm, torchinfo, einops and SpikingJelly's old
``clock_driven`` API; install them apart from the project's environment,
e.g. ``pip install --no-deps --target /tmp/origdeps timm torchinfo
spikingjelly==0.0.0.0.14``, and run from the repository root::

    PYTHONPATH=/tmp/origdeps python tests/data/make_reference_cases.py \\
        --v3 PATH/Spike-Driven-Transformer-V3 \\
        --v2 PATH/Spike-Driven-Transformer-V2 \\
        [--check DIR_OF_THE_OLD_FULL_SIZE_CASES]

``--v3`` / ``--v2`` are checkouts (only ``SDT_V3/Classification/Model_Base/
models.py`` and ``classification/models.py`` are read). ``--check`` first
runs the original code on the old full-size cases
(``e_spikeformer_s_official.pth``, ``meta_spikeformer_small_T4_official.pth``)
and stops unless it reproduces every stored output to float rounding
(see ``check_same``), which shows that this procedure is the one that made
them.

The V2 code builds its LIF neurons with SpikingJelly's CuPy backend, which
needs CuPy and a GPU; the source is compiled with ``backend="torch"``
instead (the same neuron, computed step by step in PyTorch).
"""
import argparse
import os
import os.path as osp
import sys
import types
from functools import partial

import torch
from torch import nn

TESTS = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, TESTS)

from reference_cases import (E_SPIKEFORMER_S,  # noqa: E402
                             META_SPIKEFORMER_SMALL_T4, DATA, fingerprint)

V3_MODELS = 'SDT_V3/Classification/Model_Base/models.py'
V2_MODELS = 'classification/models.py'
STAGES = ['ConvBlock1_1', 'ConvBlock1_2', 'ConvBlock2_2', 'block3', 'block4']
OLD_E_SPIKEFORMER = 'e_spikeformer_s_official.pth'
OLD_META_SPIKEFORMER = 'meta_spikeformer_small_T4_official.pth'


def load_original(path, name, replace=()):
    """Compile an original model file into a fresh module.

    Args:
        path (str): the file.
        name (str): the module's name.
        replace (tuple[tuple[str, str]]): source substitutions; each must
            occur in the file.

    Returns:
        module: the executed module.
    """
    with open(path) as f:
        source = f.read()
    for old, new in replace:
        if old not in source:
            raise ValueError(f'{path} has no {old!r} to replace')
        source = source.replace(old, new)
    module = types.ModuleType(name)
    module.__file__ = path
    exec(compile(source, path, 'exec'), module.__dict__)
    return module


def run_e_spikeformer(models, state_dict, x):
    """The original E-SpikeFormer S on one case.

    Returns:
        dict: ``eval_logits``, ``eval_stage_outputs`` (output of the last
        block of each stage, eval mode), ``train_logits`` and
        ``train_input_grad`` (train mode, ``logits.sum().backward()``).
    """
    model = models.Efficient_Spiking_Transformer_s()
    model.load_state_dict(state_dict, strict=True)
    stages = {}

    def keep(name, module, args, output):
        stages[name] = output.detach().clone()

    hooks = [
        getattr(model, name)[-1].register_forward_hook(partial(keep, name))
        for name in STAGES
    ]
    model.eval()
    with torch.no_grad():
        eval_logits = model(x)
    for hook in hooks:
        hook.remove()
    model.train()
    x = x.clone().requires_grad_()
    train_logits = model(x)
    train_logits.sum().backward()
    return dict(
        eval_logits=eval_logits,
        eval_stage_outputs=stages,
        train_logits=train_logits.detach(),
        train_input_grad=x.grad)


def meta_spikeformer_small(models):
    """The original Meta-SpikeFormer at widths 32/64/128/160, 10 classes,
    with the kd head (``metaspikformer_8_384``'s arguments otherwise)."""
    return models.Spiking_vit_MetaFormer(
        img_size_h=64,
        img_size_w=64,
        patch_size=16,
        embed_dim=[32, 64, 128, 160],
        num_heads=8,
        mlp_ratios=4,
        in_channels=3,
        num_classes=10,
        qkv_bias=False,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        depths=8,
        sr_ratios=1,
        kd=True)


def run_meta_spikeformer(models, reset_net, state_dict, x, T):
    """The original Meta-SpikeFormer small on one case, T time steps.

    Returns:
        dict: ``eval_logits`` (eval mode: mean of head and head_kd),
        ``train_logits`` (train mode, the ``head`` output) and
        ``train_input_grad`` (after ``train_logits.sum().backward()``).
    """
    model = meta_spikeformer_small(models)
    model.T = T  # how the original's main_finetune.py sets the time steps
    model.load_state_dict(state_dict, strict=True)
    model.eval()
    reset_net(model)  # the LIF membranes start at rest for every input
    with torch.no_grad():
        eval_logits = model(x)
    model.train()
    reset_net(model)
    x = x.clone().requires_grad_()
    train_logits, _ = model(x)
    train_logits.sum().backward()
    return dict(
        eval_logits=eval_logits,
        train_logits=train_logits.detach(),
        train_input_grad=x.grad)


def write_key_list(model, path, title):
    """Write a model's state-dict names and shapes in the official key
    list format."""
    state = model.state_dict()
    params = sum(p.numel() for p in model.parameters())
    with open(path, 'w') as f:
        f.write(f'# {title}: official state_dict keys and shapes; '
                f'params {params}\n')
        for name, value in state.items():
            f.write(f'{name}\t{tuple(value.shape)}\n')


def _tensors(outputs):
    flat = {}
    for name, value in outputs.items():
        if isinstance(value, dict):
            flat.update({f'{name}.{k}': v for k, v in value.items()})
        elif torch.is_tensor(value):
            flat[name] = value
    return flat


def check_same(name, stored, produced):
    """Exit unless every output is reproduced to float rounding.

    The network is quantised: a different computation (another op, another
    order of layers) flips spikes and moves outputs by 1e-2 to 1; another
    machine's summation order (BLAS kernels) alone moves them by about 1e-7
    without flipping a spike. The bound, 1e-5 of each output's largest
    magnitude, tells the two apart; the differences found are printed.
    """
    stored, produced = _tensors(stored), _tensors(produced)
    failed = False
    for key, value in produced.items():
        diff = (value - stored[key]).abs().max().item()
        bound = 1e-5 * stored[key].abs().max().item()
        print(f'  {name} {key}: max abs difference {diff:.3g}')
        failed |= diff > bound
    if failed:
        sys.exit(f'{name}: the original code does not reproduce the '
                 'stored outputs')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--v3', required=True,
                        help='checkout of BICLab/Spike-Driven-Transformer-V3')
    parser.add_argument('--v2', required=True,
                        help='checkout of BICLab/Spike-Driven-Transformer-V2')
    parser.add_argument('--check', metavar='DIR',
                        help='first reproduce the old full-size cases in DIR')
    args = parser.parse_args()

    v3 = load_original(osp.join(args.v3, V3_MODELS), 'sdt_v3_base_models')
    v2 = load_original(
        osp.join(args.v2, V2_MODELS),
        'sdt_v2_models',
        replace=[('backend="cupy"', 'backend="torch"')])
    from spikingjelly.clock_driven.functional import reset_net

    if args.check:
        old = torch.load(osp.join(args.check, OLD_E_SPIKEFORMER),
                         weights_only=True)
        check_same(OLD_E_SPIKEFORMER, old,
                    run_e_spikeformer(v3, old['state_dict'], old['input']))
        old = torch.load(osp.join(args.check, OLD_META_SPIKEFORMER),
                         weights_only=True)
        check_same(
            OLD_META_SPIKEFORMER, old,
            run_meta_spikeformer(v2, reset_net, old['state_dict'],
                                 old['input'], old['T']))

    os.makedirs(osp.join(DATA, 'reference_cases'), exist_ok=True)
    write_key_list(
        meta_spikeformer_small(v2),
        osp.join(DATA, META_SPIKEFORMER_SMALL_T4.key_list),
        'Meta-SpikeFormer widths 32/64/128/160, 10 classes (kd=True)')

    for case, run, note in (
        (E_SPIKEFORMER_S, lambda sd, x: run_e_spikeformer(v3, sd, x),
         'original E-SpikeFormer S (BICLab/Spike-Driven-Transformer-V3, '
         f'{V3_MODELS}, Efficient_Spiking_Transformer_s); eval_logits and '
         'eval_stage_outputs (last block of each named stage) in eval '
         'mode; train_* in train mode after logits.sum().backward()'),
        (META_SPIKEFORMER_SMALL_T4,
         lambda sd, x: run_meta_spikeformer(v2, reset_net, sd, x,
                                            META_SPIKEFORMER_SMALL_T4.
                                            time_steps),
         'original Meta-SpikeFormer (BICLab/Spike-Driven-Transformer-V2, '
         f'{V2_MODELS}, kd=True, torch backend); input repeated over T '
         'steps; eval_logits in eval mode; train_* in train mode (head '
         'output, not head_kd) after logits.sum().backward()'),
    ):
        state_dict, x = case.state_dict(), case.input()
        outputs = run(state_dict, x)
        outputs.update(
            note=note,
            state_dict_sha256=fingerprint(state_dict),
            input_sha256=fingerprint({'input': x}))
        if case.time_steps is not None:
            outputs['T'] = case.time_steps
        torch.save(outputs, case.outputs_path)
        print(f'{case.name}: wrote {case.outputs_path} '
              f'({osp.getsize(case.outputs_path)} bytes)')


if __name__ == '__main__':
    main()
