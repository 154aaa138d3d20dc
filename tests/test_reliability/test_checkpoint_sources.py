"""Checkpoints from every source mmengine knows (URLs, model-zoo names,
storage backends) load weights-only while safe loading is on: a file that
would run code is refused, naming the refused global and the source, and
the code never runs."""
import functools
import json
import os
import os.path as osp
import pickle
import shutil
import sys
import threading
import types
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader

from sdt3_mm.models import ESpikeFormer
from sdt3_mm.reliability import safe_checkpoint_loading

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_CONFIG = osp.join(ROOT, 'configs/demo/e-spikeformer-t_shapes-cls.py')


def plant_marker(path):
    """The payload: proof that unpickling ran code."""
    with open(path, 'w') as f:
        f.write('code in a checkpoint ran')
    return path


class Payload:

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (plant_marker, (self.marker, ))


class _QuietHandler(SimpleHTTPRequestHandler):

    def log_message(self, format, *args):
        pass


@pytest.fixture
def site(tmp_path, monkeypatch, mmengine_schemes):
    """A local HTTP server over tmp/served, an isolated torch hub cache,
    and a checkpoint there whose payload writes tmp/MARKER."""
    served = tmp_path / 'served'
    served.mkdir()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    cache = osp.join(torch.hub.get_dir(), 'checkpoints')
    assert cache.startswith(str(tmp_path)), 'torch.hub.set_dir() was called'
    marker = str(tmp_path / 'MARKER')
    torch.save({
        'state_dict': {
            'w': torch.ones(2)
        },
        'payload': Payload(marker)
    }, str(served / 'evil.pth'))
    server = ThreadingHTTPServer(
        ('127.0.0.1', 0),
        functools.partial(_QuietHandler, directory=str(served)))
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05, ), daemon=True)
    thread.start()
    try:
        yield types.SimpleNamespace(
            url=f'http://127.0.0.1:{server.server_address[1]}',
            served=served,
            cache=cache,
            marker=marker)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _refused(error, source):
    message = str(error.value)
    assert 'plant_marker' in message, message
    assert source in message, message


@pytest.mark.parametrize('where', ['backbone', 'classifier'])
def test_pretrained_url_runs_no_code(site, where):
    url = f'{site.url}/evil.pth'
    init_cfg = dict(type='Pretrained', checkpoint=url)
    with safe_checkpoint_loading():
        if where == 'backbone':  # sdt3_mm's own reader
            model = ESpikeFormer(arch='t', init_cfg=init_cfg)
        else:  # mmengine's PretrainedInit, through CheckpointLoader
            from mmengine.registry import DefaultScope
            from mmpretrain.registry import MODELS
            with DefaultScope.overwrite_default_scope('mmpretrain'):
                model = MODELS.build(
                    dict(
                        type='ImageClassifier',
                        backbone=dict(type='sdt3_mm.ESpikeFormer', arch='t'),
                        neck=dict(type='GlobalAveragePooling'),
                        head=dict(
                            type='LinearClsHead',
                            num_classes=2,
                            in_channels=128),
                        init_cfg=init_cfg))
        with pytest.raises(pickle.UnpicklingError) as error:
            model.init_weights()
    _refused(error, url)
    assert not osp.exists(site.marker)
    # refused, so not left in the hub cache (nor its private temp folder)
    assert os.listdir(site.cache) == []


def test_backbone_url_is_safe_without_switching_on(site):
    """sdt3_mm's own reader loads weights-only whatever mmengine's
    loaders are."""
    model = ESpikeFormer(
        arch='t',
        init_cfg=dict(type='Pretrained', checkpoint=f'{site.url}/evil.pth'))
    with pytest.raises(pickle.UnpicklingError) as error:
        model.init_weights()
    _refused(error, f'{site.url}/evil.pth')
    assert not osp.exists(site.marker)


def test_runner_load_from_url_runs_no_code(site, tmp_path):
    from mmengine.config import Config
    from mmengine.runner import Runner
    url = f'{site.url}/evil.pth'
    cfg = Config.fromfile(DEMO_CONFIG)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.load_from = url
    cfg.test_dataloader.update(
        batch_size=2, num_workers=0, persistent_workers=False)
    cfg.test_dataloader.dataset.update(
        data_root=str(tmp_path / 'shapes'), num_train=2, num_val=2)
    assert dict(type='sdt3_mm.SafeCheckpointLoadingHook') in \
        cfg.custom_hooks
    runner = Runner.from_cfg(cfg)
    with pytest.raises(pickle.UnpicklingError) as error:
        runner.test()
    _refused(error, url)
    assert not osp.exists(site.marker)


def test_benign_checkpoint_over_http_loads_into_the_cache(site):
    source = ESpikeFormer(arch='t')
    for param in source.parameters():
        torch.nn.init.normal_(param)
    state = {f'backbone.{k}': v for k, v in source.state_dict().items()}
    torch.save({'state_dict': state}, str(site.served / 'benign.pth'))
    url = f'{site.url}/benign.pth'
    with safe_checkpoint_loading():
        loaded = CheckpointLoader.load_checkpoint(url, map_location='cpu')
        model = ESpikeFormer(
            arch='t', init_cfg=dict(type='Pretrained', checkpoint=url))
        model.init_weights()
    assert osp.isfile(osp.join(site.cache, 'benign.pth'))
    for key, value in source.state_dict().items():
        assert torch.equal(loaded['state_dict'][f'backbone.{key}'], value)
        assert torch.equal(model.state_dict()[key], value), key

    # torch hub's legacy download: a pre-1.6 file zipped by hand
    torch.save({'w': torch.arange(3)},
               str(site.served / 'old.pth'),
               _use_new_zipfile_serialization=False)
    with zipfile.ZipFile(str(site.served / 'old.zip'), 'w') as archive:
        archive.write(str(site.served / 'old.pth'), 'old.pth')
    with safe_checkpoint_loading():
        old = CheckpointLoader.load_checkpoint(f'{site.url}/old.zip')
    assert torch.equal(old['w'], torch.arange(3))


def _fake_pavi(served):

    class Model:
        name = 'evil.pth'

        @staticmethod
        def download(path):
            shutil.copy(str(served / 'evil.pth'), path)

    return types.SimpleNamespace(
        modelcloud=types.SimpleNamespace(get=lambda path: Model))


def _fake_ceph_backend(served):

    class Backend:

        @staticmethod
        def get(filename):
            with open(str(served / 'evil.pth'), 'rb') as f:
                return f.read()

    return lambda filename, backend_args: Backend


@pytest.mark.parametrize('scheme', [
    'http', 'open-mmlab', 'open-mmlab-local', 'torchvision', 'modelzoo',
    'mmcls', 's3', 'pavi'
])
def test_every_scheme_refuses_code(site, tmp_path, monkeypatch, scheme):
    """Each name resolves as mmengine resolves it, then loads
    weights-only. The model lists and backends are faked, pointing at the
    local server or file."""
    from mmengine import fileio
    from mmengine.runner import checkpoint
    url = f'{site.url}/evil.pth'
    home = tmp_path / 'mmengine_home'
    home.mkdir()
    monkeypatch.setenv('MMENGINE_HOME', str(home))
    shutil.copy(str(site.served / 'evil.pth'), str(home / 'evil.pth'))
    (home / 'open_mmlab.json').write_text(
        json.dumps(dict(evil=url, evil_local='evil.pth')))
    monkeypatch.setattr(checkpoint, 'get_torchvision_models',
                        lambda: dict(evil=url))
    monkeypatch.setattr(checkpoint, 'get_mmcls_models', lambda: dict(evil=url))
    monkeypatch.setattr(fileio, 'get_file_backend',
                        _fake_ceph_backend(site.served))
    monkeypatch.setitem(sys.modules, 'pavi', _fake_pavi(site.served))
    if scheme == 'http':
        name, source = url, url
    else:
        name = {
            'open-mmlab': 'open-mmlab://evil',
            'open-mmlab-local': 'openmmlab://evil_local',
            'torchvision': 'torchvision://evil',
            'modelzoo': 'modelzoo://evil',
            'mmcls': 'mmcls://evil',
            's3': 's3://bucket/evil.pth',
            'pavi': 'pavi://evil',
        }[scheme]
        source = {
            'open-mmlab-local': str(home / 'evil.pth'),
            's3': name,
            'pavi': name
        }.get(scheme, url)
    with safe_checkpoint_loading():
        with pytest.raises(pickle.UnpicklingError) as error:
            CheckpointLoader.load_checkpoint(name, map_location='cpu')
    _refused(error, source)
    assert not osp.exists(site.marker)


def test_a_refused_download_leaves_nothing_a_plain_load_runs(site):
    """The cache poisoning of issue #26: a file refused under
    safe_checkpoint_loading() used to stay in torch hub's cache under its
    file name, and mmengine's own load_from_http of any URL with that name
    (another host, no network) then unpickled it fully from there."""
    from mmengine.runner.checkpoint import load_from_http
    with safe_checkpoint_loading():
        with pytest.raises(pickle.UnpicklingError) as error:
            CheckpointLoader.load_checkpoint(f'{site.url}/evil.pth')
    # mmengine's plain loader, ours switched off, for the same file name on
    # a host that serves nothing (port 1 of the loopback: refused); before,
    # it found the file in the cache and ran its code
    try:
        load_from_http('http://127.0.0.1:1/models/evil.pth')
    except OSError:  # URLError: nothing to download, nothing cached
        pass
    assert not osp.exists(site.marker)
    assert not osp.exists(osp.join(site.cache, 'evil.pth'))
    assert 'deleted again and not put into torch hub' in str(error.value)


def test_a_file_already_in_the_cache_is_checked_before_use(site):
    """A file put into the cache by a load that did not check it is not
    trusted: refused, naming the cached file, and its code never runs."""
    os.makedirs(site.cache)
    cached = osp.join(site.cache, 'evil.pth')
    shutil.copy(str(site.served / 'evil.pth'), cached)
    url = 'http://127.0.0.1:1/models/evil.pth'  # nothing is downloaded
    with safe_checkpoint_loading():
        with pytest.raises(pickle.UnpicklingError) as error:
            CheckpointLoader.load_checkpoint(url)
    _refused(error, url)
    assert f"found in torch hub's cache as {cached}" in str(error.value)
    assert not osp.exists(site.marker)


def test_a_damaged_download_is_not_cached(site):
    """A download that is not a whole checkpoint is refused (naming the
    URL) and deleted, so that neither loader finds it later."""
    with open(str(site.served / 'half.pth'), 'wb') as f:
        f.write((site.served / 'evil.pth').read_bytes()[:300])
    from sdt3_mm.reliability import CheckpointFileError
    with safe_checkpoint_loading():
        with pytest.raises(CheckpointFileError, match='truncated') as error:
            CheckpointLoader.load_checkpoint(f'{site.url}/half.pth')
    assert f'{site.url}/half.pth' in str(error.value)
    assert os.listdir(site.cache) == []
    # torch hub's legacy download (a pre-1.6 file zipped by hand) whose one
    # file fails its CRC check
    torch.save({'w': torch.arange(1000)},
               str(site.served / 'old.pth'),
               _use_new_zipfile_serialization=False)
    old_zip = str(site.served / 'old.zip')
    with zipfile.ZipFile(old_zip, 'w') as archive:
        archive.write(str(site.served / 'old.pth'), 'old.pth')
    with zipfile.ZipFile(old_zip) as archive:
        offset = archive.getinfo('old.pth').header_offset + 1000
    with open(old_zip, 'r+b') as f:
        f.seek(offset)
        f.write(bytes(64))
    with safe_checkpoint_loading():
        with pytest.raises(CheckpointFileError, match='old.pth is damaged'):
            CheckpointLoader.load_checkpoint(f'{site.url}/old.zip')
    assert os.listdir(site.cache) == []


def test_every_rank_is_told_when_rank_0_cannot_load(site, tmp_path):
    """In a distributed run rank 0 downloads and checks while the others
    wait; when it fails (here: a file refused), rank 1 raises with rank
    0's reason instead of waiting at a barrier for a file that does not
    come (before: a gloo error about a peer gone away, or a hang)."""
    import socket
    import subprocess
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    script = osp.join(osp.dirname(osp.abspath(__file__)),
                      'http_rank_loader.py')
    url, cache = f'{site.url}/evil.pth', str(tmp_path / 'cache')
    ranks = [
        subprocess.Popen(
            [sys.executable, script, url, cache],
            cwd=ROOT,
            env=dict(
                os.environ,
                MASTER_ADDR='127.0.0.1',
                MASTER_PORT=str(port),
                RANK=str(rank),
                WORLD_SIZE='2',
                OMP_NUM_THREADS='1'),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True) for rank in (0, 1)
    ]
    outputs = []
    for process in ranks:
        try:
            outputs.append(process.communicate(timeout=120)[0])
        except subprocess.TimeoutExpired:
            for other in ranks:
                other.kill()
            pytest.fail('a rank waited for rank 0 for 2 minutes')
    assert 'rank 0 raised UnpicklingError: refused to load' in outputs[0]
    assert ('rank 1 raised RuntimeError: rank 1: rank 0 could not load '
            f'checkpoint {url}') in outputs[1], outputs[1]
    assert 'UnpicklingError: refused to load' in outputs[1]
    assert not osp.exists(site.marker)
    assert not osp.exists(osp.join(cache, 'evil.pth'))
