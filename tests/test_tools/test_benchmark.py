"""The benchmark tool's baselines compute what they claim to."""
import os
import os.path as osp
import runpy
import subprocess
import sys

import torch

from sdt3_mm.models import (ESpikeFormer, MetaSpikeFormer, MultiStepLIFNeuron,
                            SFANeuron)

# The tool runs on one thread whatever the test process has (under xdist
# tests/conftest.py sets OMP_NUM_THREADS=1 after torch read it), so that the
# rows it names are known.
ONE_THREAD = dict(os.environ, OMP_NUM_THREADS='1')
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
                          cwd=ROOT,
                          env=ONE_THREAD)


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


def test_markdown_prints_rows_of_the_docs_tables():
    result = _run_tool('--compare', 'ours', 'naive', '--modes', 'infer',
                       '--markdown')
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines()
            if line.startswith('|')]
    assert rows[0] == ('| preset, input, batch, device | mode | `ours` | '
                       '`naive` | `naive` / `ours` |')
    assert rows[1] == '|---|---|---|---|---|'
    case = 't, 32 x 32, 1, CPU, 1 threads'
    assert rows[2].startswith(f'| {case} | inference | ')
    assert rows[2].endswith('x time |')
    assert rows[3].startswith(f'| {case} | train-step memory | +')
    assert len(rows) == 4


def test_timings_are_written_in_the_medians_unit():
    fmt = bench['_format_timing']
    assert fmt(dict(median_s=12.345, min_s=11.1, max_s=13.6)) == \
        '12.35 s [11.10-13.60]'
    assert fmt(dict(median_s=1.1372, min_s=1.102, max_s=1.156)) == \
        '1137 ms [1102-1156]'
    assert fmt(dict(median_s=0.0986, min_s=0.0978, max_s=0.1028)) == \
        '98.6 ms [97.8-102.8]'


def test_eager_variant_turns_the_fused_neurons_off():
    ours = bench['build_backbone']('t', 'ours')
    eager = bench['build_backbone']('t', 'eager')
    neurons = [m for m in eager.modules() if isinstance(m, SFANeuron)]
    assert neurons and all(m.fused is False for m in neurons)
    assert all(m.fused is True for m in ours.modules()
               if isinstance(m, SFANeuron))
    assert eager.state_dict().keys() == ours.state_dict().keys()
