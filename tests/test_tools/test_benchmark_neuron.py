"""The SFA neuron micro-benchmark: what it times and prints on CPU."""
import os
import os.path as osp
import subprocess
import sys

import torch

# The tool runs on one thread whatever the test process has (under xdist
# tests/conftest.py sets OMP_NUM_THREADS=1 after torch read it), so that the
# rows it names are known.
ONE_THREAD = dict(os.environ, OMP_NUM_THREADS='1')
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools/analysis_tools/benchmark_neuron.py')


def _run(*args):
    return subprocess.run([sys.executable, TOOL, *args],
                          capture_output=True,
                          text=True,
                          cwd=ROOT,
                          env=ONE_THREAD)


def test_on_cpu_times_the_eager_neuron_and_says_fused_needs_cuda():
    result = _run('--device', 'cpu', '--shape', '2', '8', '16', '16',
                  '--dtypes', 'fp32', 'bf16', '--warmup', '0', '--repeats',
                  '1', '--markdown')
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert 'The fused SFA neuron runs on CUDA tensors only' in out
    assert 'fused ' not in out.split('forward + backward')[1].split('|')[0]
    rows = [line for line in out.splitlines() if line.startswith('|')]
    assert rows[0] == ('| neuron, input, device | precision | '
                       'eager (fused=False) |')
    case = ('SFA neuron D=4, 2 x 8 x 16 x 16, CPU, '
            '1 threads')
    assert rows[2].startswith(f'| {case} | fp32 | ')
    assert rows[3].startswith(f'| {case} | bf16 | ')
    assert len(rows) == 4


def test_neuron_step_runs_forward_and_backward():
    import runpy
    tool = runpy.run_path(TOOL)
    step = tool['NeuronStep'](False, (3, 5), torch.float32,
                              torch.device('cpu'), 4)
    step()
    # The straight-through gradient: 1 / D inside [0, D], 0 outside.
    inside = (step.x >= 0) & (step.x <= 4)
    assert torch.equal(step.x.grad, torch.where(inside, step.grad / 4, 0))


def test_rejects_a_bad_shape():
    result = _run('--device', 'cpu', '--shape', '4', '0')
    assert result.returncode == 2
    assert '--shape: every size must be positive' in result.stderr
