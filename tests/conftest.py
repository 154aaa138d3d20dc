import os
import os.path as osp
from collections import OrderedDict

import pytest
import torch
from reference_cases import E_SPIKEFORMER_S, META_SPIKEFORMER_SMALL_T4

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

# Why a test marked ``cuda`` (the CUDA tier, ``pytest -m cuda``) is skipped.
NO_CUDA_REASON = 'no CUDA device: torch.cuda.is_available() is False'


def pytest_collection_modifyitems(config, items):
    """Skip the tests marked ``cuda`` on a machine without a CUDA device,
    saying so, so that the CPU suite runs everywhere and the same files are
    the CUDA tier where a GPU is present."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=NO_CUDA_REASON)
    for item in items:
        if item.get_closest_marker('cuda') is not None:
            item.add_marker(skip)


# A folder holding the old full-size reference cases
# (e_spikeformer_s_official.pth, meta_spikeformer_small_T4_official.pth, no
# longer in the repository); when set, the reference tests run on them too.
REFERENCE_DIR_VARIABLE = 'SDT3_REFERENCE_DIR'


def _reference_case(request, tmp_path_factory, seeded, full_size_file):
    """A reference case of the original code, with ``checkpoint``: the path
    of a file whose ``state_dict`` holds its official-format weights.

    ``request.param`` 'seeded' makes the case from its seed
    (``tests/reference_cases.py``); 'full_size' loads the old file
    ``full_size_file`` from ``$SDT3_REFERENCE_DIR`` and skips when the
    variable is unset.
    """
    if request.param == 'seeded':
        case = seeded.load()
        path = tmp_path_factory.mktemp(seeded.name) / 'official.pth'
        torch.save({'state_dict': case['state_dict']}, path)
        case['checkpoint'] = str(path)
        return case
    folder = os.environ.get(REFERENCE_DIR_VARIABLE)
    if not folder:
        pytest.skip(f'{REFERENCE_DIR_VARIABLE} is not set: no folder with '
                    f'the full-size reference case {full_size_file}')
    path = osp.join(folder, full_size_file)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{REFERENCE_DIR_VARIABLE}={folder} holds '
                                f'no {full_size_file}')
    case = torch.load(path, weights_only=True)
    case['checkpoint'] = path
    return case


@pytest.fixture(scope='session', params=['seeded', 'full_size'])
def official_fixture(request, tmp_path_factory):
    """The reference case of the original E-SpikeFormer S code: weights and
    input, ``eval_logits``, ``eval_stage_outputs``, ``train_logits``,
    ``train_input_grad`` and ``checkpoint`` (see ``_reference_case``)."""
    return _reference_case(request, tmp_path_factory, E_SPIKEFORMER_S,
                           'e_spikeformer_s_official.pth')


@pytest.fixture(scope='session', params=['seeded', 'full_size'])
def meta_reference(request, tmp_path_factory):
    """The reference case of the original Meta-SpikeFormer code (widths
    32/64/128/160, 10 classes, kd head): weights, input, ``T``,
    ``eval_logits``, ``train_logits``, ``train_input_grad`` and
    ``checkpoint`` (see ``_reference_case``)."""
    return _reference_case(request, tmp_path_factory,
                           META_SPIKEFORMER_SMALL_T4,
                           'meta_spikeformer_small_T4_official.pth')


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


@pytest.fixture
def mmengine_schemes(monkeypatch):
    """mmengine's ``CheckpointLoader`` with mmengine's own loader for each of
    its schemes during the test, and what it held before afterwards.

    A run refused in ``load_from`` never reaches its hook's ``after_run``,
    which leaves sdt3_mm's loaders in place (documented), so a test that
    starts from mmengine's loaders sets them itself rather than trusting
    the tests before it on the same worker.

    Yields:
        OrderedDict: The schemes set, in mmengine's order (reverse sorted,
        so a longer prefix is tried before a shorter one).
    """
    from mmengine.runner import checkpoint as mm
    loaders = {
        '': mm.load_from_local,
        'http://': mm.load_from_http,
        'https://': mm.load_from_http,
        'modelzoo://': mm.load_from_torchvision,
        'torchvision://': mm.load_from_torchvision,
        'open-mmlab://': mm.load_from_openmmlab,
        'openmmlab://': mm.load_from_openmmlab,
        'mmcls://': mm.load_from_mmcls,
        'pavi://': mm.load_from_pavi,
        r'(\S+\:)?s3://': mm.load_from_ceph,
        r'(\S+\:)?petrel://': mm.load_from_ceph,
    }
    schemes = OrderedDict(
        sorted(loaders.items(), key=lambda t: t[0], reverse=True))
    monkeypatch.setattr(mm.CheckpointLoader, '_schemes', schemes)
    yield schemes
