"""mmengine runner checkpoints load under torch's weights-only default,
with sdt3_mm's loader switched on explicitly (never by importing it)."""
import os
import os.path as osp
import pickle
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import numpy.dtypes
import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader, load_from_local
from PIL import Image

from sdt3_mm.reliability import (SafeCheckpointLoadingHook,
                                 enable_safe_checkpoint_loading,
                                 restore_checkpoint_loader,
                                 safe_checkpoint_loading, safe_torch_load)
from sdt3_mm.reliability.safe_loading import (load_from_http_safely,
                                              load_from_local_safely,
                                              refuse_unknown_mmengine_scheme)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SAFE_HOOK = dict(type='sdt3_mm.SafeCheckpointLoadingHook')
# Each test starts from mmengine's own loaders (see the fixture).
pytestmark = pytest.mark.usefixtures('mmengine_schemes')


def _image_folder(root):
    rng = np.random.default_rng(0)
    for label in ('a', 'b'):
        os.makedirs(osp.join(root, label))
        for i in range(4):
            pixels = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(osp.join(root, label, f'{i}.png'))
    return root


def _runner_cfg(work_dir, data_root, max_iters, **kwargs):
    from mmengine.config import Config
    return Config(
        dict(
            default_scope='mmpretrain',
            model=dict(
                type='ImageClassifier',
                data_preprocessor=dict(
                    mean=[127.5] * 3, std=[127.5] * 3, to_rgb=True),
                backbone=dict(type='sdt3_mm.ESpikeFormer', arch='t'),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(
                    type='LinearClsHead',
                    num_classes=2,
                    in_channels=128,
                    loss=dict(type='CrossEntropyLoss'))),
            train_dataloader=dict(
                batch_size=4,
                num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=True),
                dataset=dict(
                    type='CustomDataset',
                    data_root=data_root,
                    pipeline=[
                        dict(type='LoadImageFromFile'),
                        dict(type='PackInputs')
                    ])),
            train_cfg=dict(by_epoch=False, max_iters=max_iters),
            optim_wrapper=dict(
                optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05)),
            param_scheduler=[
                dict(type='CosineAnnealingLR', by_epoch=False, T_max=4)
            ],
            default_hooks=dict(
                checkpoint=dict(
                    type='CheckpointHook', interval=2, by_epoch=False),
                logger=dict(type='LoggerHook', interval=1)),
            randomness=dict(seed=0),
            work_dir=work_dir,
            **kwargs))


@pytest.fixture(scope='module')
def runner_checkpoint(tmp_path_factory):
    from mmengine.runner import Runner
    root = tmp_path_factory.mktemp('runner')
    data = _image_folder(str(root / 'data'))
    runner = Runner.from_cfg(_runner_cfg(str(root / 'work'), data, 2))
    runner.train()
    return str(root / 'work' / 'iter_2.pth'), data, str(root)


def test_torch_default_rejects_runner_checkpoint(runner_checkpoint):
    path, _, _ = runner_checkpoint
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


def test_runner_checkpoint_loads_with_its_message_hub(runner_checkpoint):
    path, _, _ = runner_checkpoint
    checkpoint = safe_torch_load(path, map_location='cpu')
    assert checkpoint['meta']['iter'] == 2
    scalars = checkpoint['message_hub']['log_scalars']
    assert 'train/loss' in scalars
    assert 'backbone.stages.0.0.conv1.conv.weight' in \
        checkpoint['state_dict']


def test_resume_and_load_from(runner_checkpoint):
    from mmengine.runner import Runner
    path, data, root = runner_checkpoint
    resumed = Runner.from_cfg(
        _runner_cfg(
            osp.join(root, 'resumed'),
            data,
            4,
            load_from=path,
            resume=True,
            custom_hooks=[SAFE_HOOK]))
    resumed.train()
    assert resumed.iter == 4
    hub = resumed.message_hub.get_scalar('train/loss')
    assert len(hub.data[0]) == 4  # two iterations before, two after
    # after_run put mmengine's loader back
    assert CheckpointLoader._schemes[''] is load_from_local

    from mmengine.runner import load_checkpoint
    model = resumed.model
    with safe_checkpoint_loading():
        load_checkpoint(model, path, map_location='cpu')
    saved = safe_torch_load(path)['state_dict']
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key]), key


def test_resume_without_the_hook_fails(runner_checkpoint):
    """What the hook is for: mmengine's own loader refuses the file."""
    from mmengine.runner import Runner
    path, data, root = runner_checkpoint
    runner = Runner.from_cfg(
        _runner_cfg(
            osp.join(root, 'no_hook'), data, 4, load_from=path, resume=True))
    with pytest.raises(pickle.UnpicklingError):
        runner.train()


def test_importing_sdt3_mm_leaves_mmengine_loader(mmengine_schemes):
    """Every module of the package, and the registries' lazy imports of a
    config's ``sdt3_mm.`` types, in a fresh process."""
    code = """
import importlib
import pkgutil
from mmengine.registry import HOOKS, MODELS, DefaultScope
from mmengine.runner.checkpoint import CheckpointLoader, load_from_local
with DefaultScope.overwrite_default_scope('mmpretrain'):
    HOOKS.build(dict(type='sdt3_mm.SafeCheckpointLoadingHook'))
    MODELS.build(dict(type='sdt3_mm.ESpikeFormer', arch='t'))
assert CheckpointLoader._schemes[''] is load_from_local, 'lazy imports'
import sdt3_mm
for info in pkgutil.walk_packages(sdt3_mm.__path__, 'sdt3_mm.'):
    importlib.import_module(info.name)
loader = CheckpointLoader._schemes['']
assert loader is load_from_local, loader
for scheme, loader in CheckpointLoader._schemes.items():
    assert loader.__module__ == 'mmengine.runner.checkpoint', (scheme, loader)
print('mmengine loader', sorted(CheckpointLoader._schemes))
"""
    result = subprocess.run([sys.executable, '-c', code],
                            cwd=ROOT,
                            capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    # the schemes the tests here start from are mmengine's
    assert f'mmengine loader {sorted(mmengine_schemes)}' in result.stdout


def test_context_manager_switches_and_restores(runner_checkpoint):
    path, _, _ = runner_checkpoint
    assert CheckpointLoader._schemes[''] is load_from_local
    with pytest.raises(pickle.UnpicklingError):
        CheckpointLoader.load_checkpoint(path, map_location='cpu')
    with safe_checkpoint_loading():
        assert CheckpointLoader._schemes[''] is load_from_local_safely
        loaded = CheckpointLoader.load_checkpoint(path, map_location='cpu')
        assert loaded['meta']['iter'] == 2
        with safe_checkpoint_loading():  # nested: still ours after it
            pass
        assert CheckpointLoader._schemes[''] is load_from_local_safely
    assert CheckpointLoader._schemes[''] is load_from_local
    with pytest.raises(KeyError), safe_checkpoint_loading():
        raise KeyError('the block failed')
    assert CheckpointLoader._schemes[''] is load_from_local


def _foreign_loader(filename, map_location):
    raise AssertionError('not called')


@pytest.mark.parametrize('scheme', ['', 'http://', 'mmcls://'])
def test_another_plugins_loader_is_named_not_overridden(monkeypatch, scheme):
    before = dict(CheckpointLoader._schemes, **{scheme: _foreign_loader})
    monkeypatch.setitem(CheckpointLoader._schemes, scheme, _foreign_loader)
    with pytest.raises(
            RuntimeError,
            match=f'scheme {scheme!r} .* test_checkpoint_'
            'loading._foreign_loader'):
        with safe_checkpoint_loading():
            pass
    with pytest.raises(RuntimeError, match='_foreign_loader'):
        SafeCheckpointLoadingHook().before_run(None)
    # no scheme was changed, not even those before it
    assert dict(CheckpointLoader._schemes) == before


def test_hook_switches_on_for_the_run_and_restores():
    from mmengine.registry import HOOKS, DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        hook = HOOKS.build(SAFE_HOOK)
    assert isinstance(hook, SafeCheckpointLoadingHook)
    assert hook.priority == 'HIGHEST'
    assert CheckpointLoader._schemes[''] is load_from_local
    hook.before_run(None)
    try:
        assert CheckpointLoader._schemes[''] is load_from_local_safely
    finally:
        hook.after_run(None)
    assert CheckpointLoader._schemes[''] is load_from_local
    # inside safe_checkpoint_loading (as tools/train.py runs), it leaves
    # the block's loader in place
    with safe_checkpoint_loading():
        hook.before_run(None)
        hook.after_run(None)
        assert CheckpointLoader._schemes[''] is load_from_local_safely
    assert CheckpointLoader._schemes[''] is load_from_local


class Payload:

    def __reduce__(self):
        return (os.system, ('echo pwned', ))


@pytest.mark.parametrize('zip_format', [True, False])
def test_foreign_pickle_is_refused(tmp_path, zip_format):
    path = str(tmp_path / 'evil.pth')
    checkpoint = {'state_dict': {}, 'payload': Payload()}
    torch.save(checkpoint, path, _use_new_zipfile_serialization=zip_format)
    with pytest.raises(pickle.UnpicklingError) as error:
        safe_torch_load(path)
    assert 'posix.system' in str(error.value) or \
        'os.system' in str(error.value)
    assert path in str(error.value)
    # a file object is named by its name, or by what the caller says
    with open(path, 'rb') as f, pytest.raises(
            pickle.UnpicklingError, match='posix.system|os.system'):
        safe_torch_load(f, source='s3://bucket/evil.pth')


class DtypeRebinder:
    """Pickles as a call of a function in numpy.dtypes that rebinds
    numpy.dtypes.Float64DType to OrderedDict for the whole process."""

    def __reduce__(self):
        return (numpy.dtypes._add_dtype_helper, (OrderedDict, 'Float64DType'))


@pytest.mark.parametrize('zip_format', [True, False])
def test_only_exact_numpy_names_are_allowed(tmp_path, monkeypatch, zip_format):
    float64_dtype = numpy.dtypes.Float64DType
    # put it back even if the file gets through
    monkeypatch.setattr(numpy.dtypes, 'Float64DType', float64_dtype)
    path = str(tmp_path / 'rebind.pth')
    torch.save({'x': DtypeRebinder()},
               path,
               _use_new_zipfile_serialization=zip_format)
    with pytest.raises(pickle.UnpicklingError) as error:
        safe_torch_load(path)
    assert 'numpy.dtypes._add_dtype_helper' in str(error.value)
    assert path in str(error.value)
    assert numpy.dtypes.Float64DType is float64_dtype


def test_legacy_format_files_load(runner_checkpoint, tmp_path):
    """Files written with _use_new_zipfile_serialization=False."""
    plain = str(tmp_path / 'plain.pth')
    torch.save({'weight': torch.ones(2)},
               plain,
               _use_new_zipfile_serialization=False)
    assert torch.equal(safe_torch_load(plain)['weight'], torch.ones(2))

    path, _, _ = runner_checkpoint
    legacy = str(tmp_path / 'legacy_runner.pth')
    # the test's own file, so trusted: rewritten in the legacy format
    torch.save(
        torch.load(path, weights_only=False),
        legacy,
        _use_new_zipfile_serialization=False)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(legacy, weights_only=True)
    checkpoint = safe_torch_load(legacy, map_location='cpu')
    assert checkpoint['meta']['iter'] == 2
    assert 'train/loss' in checkpoint['message_hub']['log_scalars']
    with open(legacy, 'rb') as f:
        assert safe_torch_load(f)['meta']['iter'] == 2


def test_every_scheme_is_switched_and_restored():
    before = dict(CheckpointLoader._schemes)
    assert len(before) >= 11  # '', http(s), open-mmlab, s3, pavi...
    with safe_checkpoint_loading():
        during = dict(CheckpointLoader._schemes)
        assert during.keys() == before.keys()
        for scheme, loader in during.items():
            assert loader.__module__ == 'sdt3_mm.reliability.safe_loading', \
                (scheme, loader)
            assert loader is not refuse_unknown_mmengine_scheme, scheme
        assert during['http://'] is during['https://'] is \
            load_from_http_safely
    after = dict(CheckpointLoader._schemes)
    assert after.keys() == before.keys()
    for scheme, loader in before.items():
        assert after[scheme] is loader, scheme

    previous = enable_safe_checkpoint_loading()
    assert previous == before
    assert enable_safe_checkpoint_loading() == during  # nested
    restore_checkpoint_loader(during)
    assert dict(CheckpointLoader._schemes) == during
    restore_checkpoint_loader(previous)
    assert dict(CheckpointLoader._schemes) == before
    with pytest.raises(TypeError, match='dict of scheme'):
        restore_checkpoint_loader(load_from_local)


def _newer_mmengine_loader(filename, map_location):
    raise AssertionError('not called')


_newer_mmengine_loader.__module__ = 'mmengine.runner.checkpoint'


def test_unknown_mmengine_scheme_is_refused_not_loaded(monkeypatch):
    monkeypatch.setitem(CheckpointLoader._schemes, 'hf://',
                        _newer_mmengine_loader)
    with safe_checkpoint_loading():
        assert CheckpointLoader._schemes['hf://'] is \
            refuse_unknown_mmengine_scheme
        with pytest.raises(pickle.UnpicklingError, match='hf://model.pth'):
            CheckpointLoader.load_checkpoint('hf://model.pth')
    assert CheckpointLoader._schemes['hf://'] is _newer_mmengine_loader


def test_plain_state_dict_needs_nothing_extra(tmp_path, monkeypatch):
    path = str(tmp_path / 'plain.pth')
    torch.save({'weight': torch.ones(2)}, path)
    allowed = []
    monkeypatch.setattr(torch.serialization, 'safe_globals',
                        lambda globs: allowed.append(globs))
    assert torch.equal(safe_torch_load(path)['weight'], torch.ones(2))
    assert allowed == []


class SneakyGetattr:
    """Pickles as a getattr beyond HistoryBuffer's statistics methods."""

    def __init__(self, owner, name):
        self.owner, self.name = owner, name

    def __reduce__(self):
        return (getattr, (self.owner, self.name))


@pytest.mark.parametrize('owner,name', [('history', 'update'),
                                        ('ordered', 'fromkeys')])
def test_getattr_beyond_history_buffer_is_refused(tmp_path, owner, name):
    
    from mmengine.logging import HistoryBuffer
    owner = HistoryBuffer if owner == 'history' else OrderedDict
    path = str(tmp_path / 'getattr.pth')
    torch.save({'x': SneakyGetattr(owner, name)}, path)
    with pytest.raises(pickle.UnpicklingError, match='refusing getattr'):
        safe_torch_load(path)


# Damaged files: every load through safe_torch_load checks the bytes (zip
# CRCs) and what they hold (a dict with finite model weights), and names the
# file. Before, an empty file raised a bare EOFError, a garbage file
# KeyError: 101, a pickled list loaded (and failed later with an
# AttributeError), and zeroed bytes or NaN weights loaded silently.


def _zero_inside_a_record(path, record_suffix, size=4096):
    """Zero ``size`` bytes inside the data of the zip record whose name ends
    with ``record_suffix`` (its header and the zip directory stay intact)."""
    import zipfile
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist()
                    if i.filename.endswith(record_suffix))
    assert info.compress_type == zipfile.ZIP_STORED
    assert info.file_size > size + 256
    start = info.header_offset + 128  # past the local header, in the data
    with open(path, 'r+b') as f:
        f.seek(start)
        f.write(bytes(size))


def _damaged(tmp_path, kind):
    path = str(tmp_path / f'{kind}.pth')
    weights = {
        'conv.weight': torch.randn(64, 64),
        'bn.running_var': torch.ones(64)
    }
    if kind == 'empty':
        open(path, 'wb').close()
    elif kind == 'garbage':
        with open(path, 'wb') as f:
            f.write(b'e' * 1000)
    elif kind == 'truncated':
        torch.save({'state_dict': weights}, path)
        with open(path, 'r+b') as f:
            f.truncate(os.path.getsize(path) // 2)
    elif kind == 'zeroed':
        torch.save({'state_dict': weights}, path)
        _zero_inside_a_record(path, 'data/0')
    elif kind == 'list':
        torch.save([weights], path)
    elif kind == 'tensor':
        torch.save(weights['conv.weight'], path)
    elif kind == 'nan_weight':
        weights['conv.weight'][3, 5] = float('nan')
        torch.save({'state_dict': weights, 'meta': {}}, path)
    elif kind == 'inf_running_var':
        weights['bn.running_var'][0] = float('inf')
        torch.save(weights, path)  # a plain state dict
    return path


@pytest.mark.parametrize('kind,error,message', [
    ('empty', 'CheckpointFileError', r'it is empty \(0 bytes\)'),
    ('garbage', 'CheckpointFileError', 'it is not a PyTorch file'),
    ('truncated', 'CheckpointFileError', 'it is truncated or damaged'),
    ('zeroed', 'CheckpointFileError',
     r'record \S+/data/0 fails its CRC check'),
    ('list', 'TypeError', 'holds a list, not a state dict'),
    ('tensor', 'TypeError', 'holds a Tensor, not a state dict'),
    ('nan_weight', 'ValueError',
     r'non-finite values in 1 tensor\(s\) of its model state dict: '
     r'conv.weight \(1 NaN of 4096\)'),
    ('inf_running_var', 'ValueError', r'bn.running_var \(1 Inf of 64\)'),
])
def test_a_damaged_checkpoint_is_refused_naming_the_file(
        tmp_path, kind, error, message):
    from sdt3_mm.reliability import CheckpointFileError
    path = _damaged(tmp_path, kind)
    expected = dict(
        CheckpointFileError=CheckpointFileError,
        TypeError=TypeError,
        ValueError=ValueError)[error]
    with pytest.raises(expected, match=message) as raised:
        safe_torch_load(path)
    assert path in str(raised.value)
    # the same through mmengine's CheckpointLoader with ours switched on
    with safe_checkpoint_loading(), pytest.raises(expected, match=message):
        CheckpointLoader.load_checkpoint(path, map_location='cpu')


def test_a_runner_checkpoint_may_log_non_finite_values(runner_checkpoint,
                                                       tmp_path):
    """Only the model's state dict is checked: a logged loss of inf in the
    message hub, or an inf in the optimizer state, is no damage."""
    path, _, _ = runner_checkpoint
    checkpoint = torch.load(path, weights_only=False)  # the test's own file
    checkpoint['message_hub']['runtime_info']['best_score'] = float('inf')
    state = checkpoint['optimizer']['state']
    state[next(iter(state))]['exp_avg_sq'].fill_(float('inf'))
    saved = str(tmp_path / 'inf_logged.pth')
    torch.save(checkpoint, saved)
    loaded = safe_torch_load(saved)
    assert loaded['message_hub']['runtime_info']['best_score'] == float('inf')


def _load_through(entry, path, tmp_path):
    """Load ``path`` as the entry point ``entry`` of sdt3_mm does."""
    from mmengine.config import Config
    demo = osp.join(ROOT, 'configs/demo/e-spikeformer-t_shapes-cls.py')
    if entry == 'pretrained':  # init_cfg=dict(type='Pretrained')
        from sdt3_mm.models import ESpikeFormer
        ESpikeFormer(
            arch='t', init_cfg=dict(type='Pretrained',
                                    checkpoint=path)).init_weights()
    elif entry == 'converter':  # tools/model_converters/sdt3_official_to_mm
        import importlib.util
        spec = importlib.util.spec_from_file_location(
            'sdt3_official_to_mm',
            osp.join(ROOT, 'tools/model_converters/sdt3_official_to_mm.py'))
        converter = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(converter)
        converter.convert(path, str(tmp_path / 'converted.pth'))
    elif entry == 'analysis':  # the analysis tools
        from sdt3_mm.analysis.model_inputs import build_analysis_model
        build_analysis_model(demo, path)
    elif entry == 'deployment':  # pytorch2onnx, benchmark_onnx
        from sdt3_mm.deployment.onnx_export import build_model
        build_model(Config.fromfile(demo), path)
    elif entry == 'resume':  # tools/train.py --resume PATH
        from mmengine.runner import Runner
        data = _image_folder(str(tmp_path / 'data'))
        runner = Runner.from_cfg(
            _runner_cfg(
                str(tmp_path / 'work'),
                data,
                2,
                load_from=path,
                resume=True,
                custom_hooks=[SAFE_HOOK]))
        runner.train()


@pytest.mark.parametrize(
    'entry', ['pretrained', 'converter', 'analysis', 'deployment', 'resume'])
@pytest.mark.parametrize('kind,error,message', [
    ('empty', 'CheckpointFileError', 'it is empty'),
    ('zeroed', 'CheckpointFileError', 'fails its CRC check'),
    ('nan_weight', 'ValueError', r'conv.weight \(1 NaN of 4096\)'),
])
def test_every_entry_point_refuses_a_damaged_checkpoint(
        tmp_path, entry, kind, error, message):
    """The checks are made where every loader of sdt3_mm ends
    (safe_torch_load), so every way into a checkpoint makes them."""
    from sdt3_mm.reliability import CheckpointFileError
    path = _damaged(tmp_path, kind)
    expected = dict(
        CheckpointFileError=CheckpointFileError, ValueError=ValueError)[error]
    with pytest.raises(expected, match=message) as raised:
        _load_through(entry, path, tmp_path)
    assert path in str(raised.value)


def test_finite_weights_whose_sum_overflows_load(tmp_path):
    """The check sums each tensor first; a sum overflowing to inf is looked
    at element by element, not taken for an Inf."""
    path = str(tmp_path / 'large.pth')
    weights = {'w': torch.full((4, ), 1e308, dtype=torch.float64)}
    torch.save(weights, path)
    assert torch.equal(safe_torch_load(path)['w'], weights['w'])
