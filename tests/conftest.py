import os
import os.path as osp

import pytest
import torch

# Under pytest-xdist (tools/run_tests.sh: two workers on two cores) the
# tools and training runs that tests start as subprocesses use one torch
# thread each; with a thread per core each they oversubscribed the cores
# (the suite had taken 31 minutes; 15 to 22 after). The workers keep
# torch's default, read when torch was imported above (so this is set in
# the workers only, not in the process that starts them): with one thread
# the train-mode reference case moves by a flipped spike (a rounding
# boundary meets another summation order).
if os.environ.get('PYTEST_XDIST_WORKER'):
    os.environ.setdefault('OMP_NUM_THREADS', '1')

DATA = osp.join(osp.dirname(__file__), 'data')


@pytest.fixture(scope='session')
def official_fixture():
    """The reference case produced by the original E-SpikeFormer code."""
    return torch.load(
        osp.join(DATA, 'e_spikeformer_s_official.pth'), weights_only=True)


@pytest.fixture
def mmpretrain_scope():
    """MMPretrain's registry scope for the test, restored afterwards (a
    global ``init_default_scope`` would leak into the tests that follow on
    the same worker)."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


@pytest.fixture(autouse=True)
def _registry_scope_of_its_own():
    """Every test starts in the registry scope the session started in.

    ``init_default_scope`` (a Runner, ``sdt3_mm.deployment.build_model``, the
    libraries' tool helpers) makes a scope current for the whole process;
    a test after it on the same worker would look bare types up in that
    library's registry and fail by order (a head's loss in MMDetection's).
    """
    from mmengine.registry import DefaultScope
    saved = DefaultScope._instance_dict.copy()
    yield
    DefaultScope._instance_dict = saved
