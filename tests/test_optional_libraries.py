"""``import sdt3_mm`` with any subset of MMPretrain, MMDetection and
MMSegmentation, and the error a part of an absent library gives.

Each case runs in a fresh interpreter where the libraries to hide are
absent before anything imports them: ``sys.modules[name] = None`` (Python
then refuses to import the name), or, for the training run, a package of
that name first on ``sys.path`` whose import raises (a library installed
but unable to import, as MMDetection is next to an mmcv built without its
ops).
"""
import json
import os
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
from demo_runs import IN_PROCESS, small_set_options, train_command

from sdt3_mm.utils.optional_libraries import (LIBRARIES, MissingLibraryError,
                                              OptionalParts, find_library)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CLS_CONFIG = osp.join(ROOT, 'configs', 'demo', 'e-spikeformer-t_shapes-cls.py')
# The registries of the sdt3_mm scope and the packages that fill them.
LIST_REGISTERED = """
import json
import sdt3_mm.datasets, sdt3_mm.engine, sdt3_mm.models, sdt3_mm.reliability
from sdt3_mm import registry
print(json.dumps({
    name: sorted(getattr(registry, name).module_dict)
    for name in ('MODELS', 'DATASETS', 'HOOKS', 'LOOPS', 'OPTIM_WRAPPERS',
                 'TRANSFORMS')}))
"""


def _run_without(hidden, code, cwd=ROOT):
    """Run ``code`` in a fresh interpreter in which the modules ``hidden``
    do not import; return its standard output (the test fails on a non-zero
    exit, with the output)."""
    prelude = ''.join(f'sys.modules[{name!r}] = None\n' for name in hidden)
    source = 'import sys\n' + prelude + textwrap.dedent(code)
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        filter(None, [ROOT, env.get('PYTHONPATH')]))
    result = subprocess.run([sys.executable, '-c', source],
                            capture_output=True,
                            text=True,
                            cwd=cwd,
                            env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_import_sdt3_mm_with_none_of_the_three_libraries():
    out = _run_without(
        ['mmpretrain', 'mmdet', 'mmseg'],
        textwrap.dedent("""
        import torch
        import sdt3_mm
        import sdt3_mm.apis, sdt3_mm.datasets, sdt3_mm.engine, sdt3_mm.models
        from mmengine.config import Config
        from mmengine.registry import MODELS
        from sdt3_mm.models import ESpikeFormer, SpikeFPN

        # mmengine's config import, and a backbone through the root registry
        Config(dict(custom_imports=dict(imports=['sdt3_mm'])))
        backbone = MODELS.build(dict(type='sdt3_mm.ESpikeFormer', arch='t'))
        print(tuple(backbone.eval()(torch.rand(1, 3, 32, 32))[-1].shape))
        for name in ('mmpretrain', 'mmdet', 'mmseg'):
            assert sys.modules[name] is None, name
        """) + LIST_REGISTERED)
    shape, registered = out.strip().splitlines()[-2:]
    assert shape == '(1, 128, 2, 2)'
    # every name answers as with all three libraries (those of the absent
    # libraries with the error of the next test)
    assert json.loads(registered) == json.loads(
        _run_without([], LIST_REGISTERED))
    assert 'SpikeFPNHead' in json.loads(registered)['MODELS']


def test_classifier_trains_without_detection_and_segmentation():
    out = _run_without(
        ['mmdet', 'mmseg'], f"""
        import torch
        from mmengine.config import Config
        from mmengine.optim import OptimWrapper
        from mmengine.registry import init_default_scope
        from mmpretrain.registry import MODELS
        from mmpretrain.structures import DataSample

        cfg = Config.fromfile({CLS_CONFIG!r})
        init_default_scope(cfg.default_scope)
        model = MODELS.build(
            dict(cfg.model, data_preprocessor=cfg.data_preprocessor))
        assert type(model.head).__module__.startswith('sdt3_mm.'), model.head
        torch.manual_seed(0)
        images = [torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
                  for _ in range(4)]
        data = dict(inputs=images,
                    data_samples=[DataSample().set_gt_label(label)
                                  for label in (0, 1, 2, 3)])
        before = [p.detach().clone() for p in model.parameters()]
        optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
        losses = model.train_step(data, optim)
        assert torch.isfinite(losses['loss']), losses
        changed = sum(not torch.equal(b, p)
                      for b, p in zip(before, model.parameters()))
        assert changed > 0
        model.eval()
        scores = model.val_step(data)[0].pred_score
        print(tuple(scores.shape), 'changed', changed)
        for name in ('mmdet', 'mmseg'):
            assert sys.modules[name] is None, name
        """)
    assert '(6,) changed' in out


# Per library, what asks for its parts: a registry name (as a config's
# ``type``) and a name of a package.
PARTS = {
    'mmseg': [
        "MODELS.build(dict(type='sdt3_mm.SpikeFPNHead'))",
        "DATASETS.build(dict(type='sdt3_mm.ShapesSegmentation'))",
        'from sdt3_mm.models import SpikeFPNHead',
    ],
    'mmdet': [
        "MODELS.build(dict(type='sdt3_mm.SpikeRPNHead'))",
        "DATASETS.build(dict(type='sdt3_mm.ShapesDetection'))",
        'from sdt3_mm.datasets import CheckedCocoDataset',
    ],
    'mmpretrain': [
        "MODELS.build(dict(type='sdt3_mm.SpikeClsHead'))",
        "HOOKS.build(dict(type='sdt3_mm.EventVisualizationHook'))",
        'from sdt3_mm.apis import inference_events',
    ],
}


@pytest.mark.parametrize('library,requirement',
                         [('mmseg', 'pip install mmsegmentation==1.2.2'),
                          ('mmdet', 'pip install mmdet==3.3.0'),
                          ('mmpretrain', 'pip install mmpretrain==1.2.0')])
def test_a_part_of_an_absent_library_names_the_package(library, requirement):
    out = _run_without(
        [library], f"""
        import sdt3_mm
        from sdt3_mm.registry import DATASETS, HOOKS, MODELS
        from sdt3_mm.utils.optional_libraries import MissingLibraryError
        for build in {PARTS[library]!r}:
            try:
                exec(build)
            except MissingLibraryError as error:
                # the library's own import error is kept, as cause and text
                assert isinstance(error.__cause__, ImportError), build
                assert str(error.__cause__) in str(error), error
                print(error)
            else:
                raise AssertionError(f'{{build}}: built without its library')
        """)
    errors = out.strip().splitlines()
    assert len(errors) == len(PARTS[library])
    for error in errors:
        assert requirement in error
        assert f'importing {library} failed: ModuleNotFoundError' in error


@pytest.mark.slow
def test_train_tool_runs_a_classification_demo_without_det_and_seg(tmp_path):
    # mmdet and mmseg installed but failing to import, as over an mmcv
    # without compiled ops
    broken = tmp_path / 'broken'
    for name in ('mmdet', 'mmseg'):
        (broken / name).mkdir(parents=True)
        (broken / name / '__init__.py').write_text(
            f"raise ImportError('{name} is broken here')\n")
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        filter(None, [str(broken), ROOT, env.get('PYTHONPATH')]))
    options = small_set_options(
        str(tmp_path / 'shapes'), 4, 2, batch_size=4, **IN_PROCESS)
    result = subprocess.run(
        train_command(CLS_CONFIG, str(tmp_path / 'work'),
                      options + ['train_cfg.max_epochs=1']),
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
        env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert osp.isfile(tmp_path / 'work' / 'epoch_1.pth')
    assert 'Epoch(train) [1][1/1]' in result.stdout + result.stderr


def test_an_import_error_of_our_own_module_is_not_taken_for_the_library():
    parts = OptionalParts('sdt3_mm.models')
    with pytest.raises(ModuleNotFoundError, match='no_such_module'):
        parts.import_module('.no_such_module', 'mmpretrain')
    assert parts.missing == {}


def test_missing_name_and_unknown_name_of_a_package():
    parts = OptionalParts('sdt3_mm.example')
    cause = ImportError('no mmseg here')
    parts.missing['SpikeFPNHead'] = (LIBRARIES['mmseg'], cause)
    with pytest.raises(MissingLibraryError) as error:
        parts.missing_attribute('SpikeFPNHead')
    assert str(error.value) == (
        'sdt3_mm.example.SpikeFPNHead needs MMSegmentation: pip install '
        'mmsegmentation==1.2.2 (importing mmseg failed: ImportError: no '
        'mmseg here)')
    assert error.value.__cause__ is cause
    with pytest.raises(AttributeError, match="has no attribute 'Nothing'"):
        parts.missing_attribute('Nothing')


def test_unknown_library_is_refused():
    with pytest.raises(ValueError, match="'mmocr' is not an optional"):
        find_library('mmocr')
    with pytest.raises(ValueError, match='need their registry'):
        OptionalParts('sdt3_mm.models').import_module(
            '.heads', 'mmpretrain', registered=['SpikeClsHead'])


def test_setup_extras_pin_what_the_errors_ask_for():
    import configparser
    setup = configparser.ConfigParser()
    setup.read(osp.join(ROOT, 'setup.cfg'))
    extras = {
        name: set(filter(None, value.split('\n')))
        for name, value in setup['options.extras_require'].items()
    }
    required = set(filter(None, setup['options']['install_requires'].split()))
    pins = {library.requirement for library in LIBRARIES.values()}
    assert extras['all'] == pins
    assert {extras['cls'].pop(), extras['det'].pop(), extras['seg'].pop()} \
        == pins
    assert not pins & required  # none of the three is required
