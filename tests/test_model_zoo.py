"""Our classifiers in MMPretrain's model hub (``sdt3_mm.model_zoo``).

Contracts: after ``import sdt3_mm`` every entry of the registered metafiles
is listed by ``mmpretrain.list_models``, builds with ``get_model`` (with the
parameter count its metafile states), runs through ``inference_model`` on a
photograph, names no download (``Weights``) and is a classifier; registering
again, or when the names are known already, does not raise.
"""
import os.path as osp
import subprocess
import sys
import textwrap

import matplotlib
import pytest
import yaml
from mmengine.registry import DefaultScope
from mmpretrain import get_model, inference_model, list_models
from mmpretrain.apis.model import ModelHub

import sdt3_mm  # noqa: F401  (registers the names)
from sdt3_mm.model_zoo import (METAFILES, REPO_ROOT, model_names,
                               register_model_zoo)

NAMES = sorted(
    name for metafile in METAFILES
    for name in model_names(osp.join(REPO_ROOT, metafile)))
SMALL = 'e-spikeformer-s_8xb256-lamb-200e_in1k'
PHOTO = osp.join(matplotlib.get_data_path(), 'sample_data', 'grace_hopper.jpg')


def test_names_listed():
    assert len(NAMES) == 9
    assert SMALL in NAMES
    assert list_models('*spike*') == NAMES
    assert sorted(list_models('*spike*', task='Image Classification')) == NAMES


def test_register_again_is_a_no_op():
    assert register_model_zoo() == []
    assert list_models('*spike*') == NAMES


@pytest.mark.parametrize('name', NAMES)
def test_entry_is_a_classifier_without_download(name):
    metainfo = ModelHub.get(name)
    assert metainfo.weights is None
    assert [result.task
            for result in metainfo.results] == ['Image Classification']
    assert metainfo.config.filename.startswith(
        osp.join(REPO_ROOT, 'configs', ''))
    assert metainfo.config.model.type == 'ImageClassifier'


@pytest.mark.parametrize('name', NAMES)
def test_get_model_builds(name):
    model = get_model(name)
    stated = ModelHub.get(name).metadata.parameters
    assert sum(p.numel() for p in model.parameters()) == stated


def test_pretrained_true_only_warns():
    """MMPretrain's behaviour for an entry without ``Weights``."""
    with pytest.warns(UserWarning, match='Unable to find pre-defined'):
        get_model(SMALL, pretrained=True)


def test_inference_model_on_a_photograph():
    assert osp.isfile(PHOTO)
    # MMPretrain's inferencer builds its pipeline in whatever default scope
    # is current, as in a fresh process a user has none or MMPretrain's; a
    # runner built earlier in this test worker may have left mmengine's.
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        result = inference_model(SMALL, PHOTO)
    assert result['pred_scores'].shape == (1000, )
    assert 0 <= result['pred_label'] < 1000
    assert isinstance(result['pred_class'], str)


def test_absent_metafiles_register_nothing(tmp_path):
    assert register_model_zoo(root=str(tmp_path)) == []


def test_name_taken_by_another_model_warns(tmp_path):
    """A metafile partly known to the hub is skipped, not raised on."""
    metafile = tmp_path / METAFILES[0]
    metafile.parent.mkdir(parents=True)
    entry = dict(
        Results=None, Config='configs/e_spikeformer/does-not-exist.py')
    metafile.write_text(
        yaml.safe_dump(
            dict(Models=[
                dict(Name=SMALL, **entry),
                dict(Name='sdt3-mm-test-unregistered-name', **entry),
            ])))
    with pytest.warns(UserWarning, match='already name other models'):
        assert register_model_zoo(root=str(tmp_path)) == []
    assert not ModelHub.has('sdt3-mm-test-unregistered-name')


def test_import_after_names_registered_by_hand():
    """In a fresh process: names registered before ``import sdt3_mm``, then
    the package imported and reloaded."""
    code = textwrap.dedent(f"""
        import importlib
        import mmpretrain
        from mmpretrain.apis.model import ModelHub
        ModelHub.register_model_index(
            {osp.join(REPO_ROOT, METAFILES[0])!r},
            config_prefix={REPO_ROOT!r})
        import sdt3_mm
        importlib.reload(sdt3_mm)
        print(len(mmpretrain.list_models('*spike*')))
        """)
    result = subprocess.run([sys.executable, '-c', code],
                            capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-1] == str(len(NAMES))
