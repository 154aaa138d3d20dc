"""The benchmark tool's baselines compute what they claim to."""
import os.path as osp
import runpy
import subprocess
import sys

import torch

from sdt3_mm.models import (ESpikeFormer, MetaSpikeFormer, MultiStepLIFNeuron,
                            SFANeuron)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools/analysis_tools/benchmark.py')
bench = runpy.run_path(TOOL)


def test_naive_attention_baseline_gives_the_same_taps():
    ours = bench['build_backbone']('t', 'ours').eval()
    naive = bench['build_backbone']('t', 'naive').eval()
    naive.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 48, 80)
    with torch.no_grad():
        for a, b in zip(ours(x), naive(x)):
            assert torch.equal(a, b)


def test_lif_and_meta_baselines_run_lif_neurons_for_four_steps():
    for variant in ('lif', 'meta'):
        model = bench['build_backbone']('t', variant)
        neurons = [m for m in model.modules() if isinstance(m, SFANeuron)]
        lifs = [
            m for m in model.modules() if isinstance(m, MultiStepLIFNeuron)
        ]
        assert not neurons and lifs and all(m.T == 4 for m in lifs)
    meta = bench['build_backbone']('t', 'meta')
    assert isinstance(meta, MetaSpikeFormer)
    assert meta.stage_channels == ESpikeFormer('t').stage_channels


def _run_tool(*args):
    return subprocess.run([
        sys.executable, TOOL, 't', '--size', '32', '32', '--batch', '1',
        '--warmup', '0', '--repeats', '1', *args
    ],
                          capture_output=True,
                          text=True,
                          cwd=ROOT)


def test_compare_prints_ratios():
    result = _run_tool('--compare', 'ours', 'naive')
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'train time: naive / ours =' in result.stdout
    assert 'step_gib: naive / ours =' in result.stdout


def test_variants_name_their_precision():
    result = _run_tool('--compare', 'ours', 'ours:bf16', '--modes', 'infer')
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'infer time: ours:bf16 / ours =' in result.stdout
    result = _run_tool('--variant', 'ours:int4')
    assert result.returncode == 2
    assert "'ours:int4': expected one of ours," in result.stderr


def test_folded_variant_has_no_norms_left():
    model = bench['build_backbone']('83m', 'folded')
    assert not any(
        isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        for m in model.modules())
