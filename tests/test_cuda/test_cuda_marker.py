"""The ``cuda`` marker: registered (the suite runs with
``--strict-markers``, which refuses an unknown marker) and skipped with the
reason where no CUDA device is visible. Runs on every machine: pytest is
started with ``CUDA_VISIBLE_DEVICES`` empty, so it sees no GPU even on one.
"""
import os
import subprocess
import sys

from cuda_tier import ROOT

TIER_FILE = 'tests/test_cuda/test_cuda_ddp.py'


def _pytest_without_gpu(*args):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='')
    env.pop('PYTEST_XDIST_WORKER', None)
    result = subprocess.run([
        sys.executable, '-m', 'pytest', '-p', 'no:cacheprovider', '-q', '-rs',
        *args
    ],
                            cwd=ROOT,
                            env=env,
                            capture_output=True,
                            text=True)
    return result.returncode, result.stdout + result.stderr


def test_cuda_tests_skip_with_the_reason_without_a_gpu():
    code, out = _pytest_without_gpu('-m', 'cuda', TIER_FILE)
    assert code == 0, out[-3000:]
    assert '1 skipped' in out, out[-3000:]
    assert 'no CUDA device: torch.cuda.is_available() is False' in out
