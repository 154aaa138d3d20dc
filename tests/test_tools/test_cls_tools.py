"""tools/train.py and tools/test.py, and MMPretrain's own train.py, on the
demo classification config with a small generated set."""
import functools
import json
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from demo_runs import IN_PROCESS, small_set_options
from tool_runner import ROOT, run_tool

CONFIG = osp.join(ROOT, 'configs/demo/e-spikeformer-t_shapes-cls.py')

# The demo set cut to 48 training and 24 held-out images.
_small_set = functools.partial(
    small_set_options, num_train=48, num_val=24, **IN_PROCESS)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('cls_tools')
    work_dir = str(tmp / 'work')
    data_root = str(tmp / 'shapes')
    # Two epochs, a validation and a checkpoint after each.
    log = run_tool([
        osp.join(ROOT, 'tools/train.py'), CONFIG, '--work-dir', work_dir,
        '--cfg-options'
    ] + _small_set(data_root) + [
        'train_cfg.max_epochs=2', 'train_cfg.val_interval=1',
        'default_hooks.checkpoint.interval=1'
    ], ROOT)
    return work_dir, data_root, log


def test_train_writes_checkpoints_and_reports_accuracy(trained):
    work_dir, data_root, log = trained
    assert osp.isfile(osp.join(work_dir, 'epoch_2.pth'))
    assert 'accuracy/top1' in log
    # FiringRateHook (in the demo config) logs next to the accuracy
    assert 'spike/firing_rate' in log and 'spike/energy_mJ' in log
    assert osp.isfile(osp.join(work_dir, 'firing_rates', 'val_iter_2.json'))
    with open(osp.join(data_root, 'meta', 'settings.json')) as f:
        assert json.load(f)['num_train'] == 48


def test_test_tool_on_the_checkpoint(trained, tmp_path):
    work_dir, data_root, _ = trained
    out = run_tool([
        osp.join(ROOT, 'tools/test.py'), CONFIG,
        osp.join(work_dir, 'epoch_2.pth'), '--work-dir',
        str(tmp_path), '--cfg-options'
    ] + _small_set(data_root), str(tmp_path))  # any working directory
    assert "'accuracy/top1'" in out


def _run(args):
    return subprocess.run(
        [sys.executable] + args, cwd=ROOT, capture_output=True, text=True)


def test_test_tool_refuses_a_checkpoint_of_another_model(trained, tmp_path):
    """The 6-class checkpoint with num_classes=10: no accuracy, but an
    error naming the keys and both shapes."""
    work_dir, data_root, _ = trained
    result = _run([
        osp.join(ROOT, 'tools/test.py'), CONFIG,
        osp.join(work_dir, 'epoch_2.pth'), '--work-dir',
        str(tmp_path), '--cfg-options'
    ] + _small_set(data_root) + ['model.head.num_classes=10'])
    assert result.returncode != 0
    assert 'accuracy/top1' not in result.stdout
    assert ('size mismatch: head.fc.weight is (6, 128) in the checkpoint '
            'and (10, 128) in the model') in result.stderr
    assert 'head.fc.bias is (6,) in the checkpoint' in result.stderr


def test_allow_mismatch_loads_the_rest(trained, tmp_path):
    work_dir, data_root, _ = trained
    out = run_tool([
        osp.join(ROOT, 'tools/test.py'), CONFIG,
        osp.join(work_dir, 'epoch_2.pth'), '--work-dir',
        str(tmp_path), '--allow-mismatch', 'head.fc.*', '--cfg-options'
    ] + _small_set(data_root) + ['model.head.num_classes=10'])
    assert '2 state-dict difference(s) allowed' in out
    assert "'accuracy/top1'" in out


def test_resume_refuses_a_changed_number_of_classes(trained, tmp_path):
    work_dir, data_root, _ = trained
    result = _run([
        osp.join(ROOT, 'tools/train.py'), CONFIG, '--work-dir',
        str(tmp_path), '--resume',
        osp.join(work_dir, 'epoch_2.pth'), '--cfg-options'
    ] + _small_set(data_root) +
                  ['train_cfg.max_epochs=3', 'model.head.num_classes=10'])
    assert result.returncode != 0
    assert 'size mismatch: head.fc.weight' in result.stderr
    assert not osp.isfile(osp.join(str(tmp_path), 'epoch_3.pth'))


def test_resume_continues_from_the_checkpoint(trained, tmp_path):
    work_dir, data_root, _ = trained
    log = run_tool([
        osp.join(ROOT, 'tools/train.py'), CONFIG, '--work-dir',
        str(tmp_path), '--resume',
        osp.join(work_dir, 'epoch_2.pth'), '--cfg-options'
    ] + _small_set(data_root) +
                   ['train_cfg.max_epochs=3', 'train_cfg.val_interval=1'],
                   str(tmp_path))  # any working directory
    assert 'resumed epoch: 2' in log
    assert osp.isfile(osp.join(str(tmp_path), 'epoch_3.pth'))


def test_mmpretrain_own_train_script_trains_and_resumes(tmp_path):
    """MMPretrain's train.py resumes a runner checkpoint through the
    config's SafeCheckpointLoadingHook (importing sdt3_mm does not switch
    the weights-only loader on)."""
    import mmpretrain
    script = osp.join(
        osp.dirname(mmpretrain.__file__), '.mim', 'tools', 'train.py')
    work_dir = str(tmp_path / 'work')
    options = _small_set(str(tmp_path / 'shapes'))
    run_tool([script, CONFIG, '--work-dir', work_dir, '--cfg-options'] +
             options + ['train_cfg.max_epochs=1'], ROOT)
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))
    log = run_tool(
        [script, CONFIG, '--work-dir', work_dir, '--resume', '--cfg-options'] +
        options + ['train_cfg.max_epochs=2'], ROOT)
    assert 'resumed epoch: 1' in log
    assert osp.isfile(osp.join(work_dir, 'epoch_2.pth'))


def test_mmpretrain_analyze_logs_plots_the_run(trained, tmp_path):
    """MMPretrain's own analyze_logs.py (seaborn, numpy 1.x) on our log."""
    import glob

    import mmpretrain
    work_dir, _, _ = trained
    log, = glob.glob(osp.join(work_dir, '*', 'vis_data', '2*.json'))
    script = osp.join(
        osp.dirname(mmpretrain.__file__), '.mim', 'tools', 'analysis_tools',
        'analyze_logs.py')
    out = str(tmp_path / 'loss.png')
    run_tool([script, 'plot_curve', log, '--keys', 'loss', '--out', out])
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_mmpretrain_browse_dataset_paints_the_images(tmp_path):
    """MMPretrain's own browse_dataset.py builds its UniversalVisualizer
    from the config's ``visualizer`` (before: ``Visualizer.__init__() got
    an unexpected keyword argument '_scope_'``). Mode ``original``: the
    modes that tile several images into a grid (``pipeline``,
    ``transformed``, ``concat``) fail inside the tool itself under
    matplotlib 3.11 (``adjust_bbox() missing ... 'renderer'``)."""
    import glob

    import mmpretrain
    from PIL import Image
    script = osp.join(
        osp.dirname(mmpretrain.__file__), '.mim', 'tools', 'visualization',
        'browse_dataset.py')
    out_dir = str(tmp_path / 'browse')
    run_tool([
        script, CONFIG, '--output-dir', out_dir, '--show-number', '6',
        '--mode', 'original', '--not-show', '--cfg-options'
    ] + _small_set(str(tmp_path / 'shapes')))
    painted = sorted(glob.glob(osp.join(out_dir, '*.png')))
    assert len(painted) == 6
    # the image with its label written on it, at the set's 64 x 64
    assert Image.open(painted[0]).size == (64, 64)


def test_verify_spike_driven_on_the_checkpoint(trained, tmp_path):
    work_dir, data_root, _ = trained
    out = run_tool([
        osp.join(ROOT, 'tools/analysis_tools/verify_spike_driven.py'), CONFIG,
        osp.join(work_dir, 'epoch_2.pth'), '--num-images', '6', '--json',
        str(tmp_path / 'verify.json'), '--cfg-options'
    ] + _small_set(data_root), str(tmp_path))  # any working directory
    assert out.count('PASS') == 3 and 'FAIL' not in out
    with open(tmp_path / 'verify.json') as f:
        result = json.load(f)
    assert result['max_diff64'] <= 1e-9 and result['binary_maps'] > 0
    assert result['non_additions']['reads real values (MAC)'] == [
        'backbone.downsample_layers.0.conv'
    ]


def test_spike_energy_on_the_checkpoint(trained, tmp_path):
    work_dir, data_root, _ = trained
    out = run_tool([
        osp.join(ROOT, 'tools/analysis_tools/spike_energy.py'), CONFIG,
        osp.join(work_dir, 'epoch_2.pth'), '--num-images', '6', '--out-dir',
        str(tmp_path), '--cfg-options'
    ] + _small_set(data_root))
    assert 'energy per image' in out and 'T x D = 1 x 4' in out
    with open(tmp_path / 'spike_energy.json') as f:
        summary = json.load(f)
    assert summary['num_images'] == 6
    assert summary['layers'][0]['op'] == 'MAC'
    assert all(r['op'] == 'AC' for r in summary['layers'][1:])
    assert summary['energy_mj'] == pytest.approx(
        sum(r['energy_pj'] for r in summary['layers']) * 1e-9)
    with open(tmp_path / 'firing_rates.png', 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'


@pytest.mark.parametrize('tool', ['spike_energy.py', 'verify_spike_driven.py'])
def test_analysis_tools_name_a_missing_target(tool):
    result = subprocess.run([
        sys.executable,
        osp.join(ROOT, 'tools/analysis_tools', tool), 'configs/nope.py'
    ],
                            cwd=ROOT,
                            capture_output=True,
                            text=True)
    assert result.returncode != 0
    assert 'configs/nope.py is neither a config file nor an ESpikeFormer ' \
        'preset' in result.stderr


def test_verify_folded_preset_leaves_only_stem_and_scales(tmp_path):
    out = run_tool([
        osp.join(ROOT, 'tools/analysis_tools/verify_spike_driven.py'), 't',
        '--fold-bn', '--num-images', '1', '--size', '32', '32', '--json',
        str(tmp_path / 'verify.json')
    ])
    assert out.count('PASS') == 3
    with open(tmp_path / 'verify.json') as f:
        reasons = set(json.load(f)['non_additions'])
    assert reasons == {
        'reads real values (MAC)', 'attention scale x0.57735',
        'attention scale x0.5'
    }


@pytest.mark.skipif(
    torch.cuda.is_available(), reason='--amp means fp16 on a GPU')
def test_train_with_amp_on_cpu_runs_in_bf16(trained, tmp_path):
    _, data_root, _ = trained
    log = run_tool([
        osp.join(ROOT, 'tools/train.py'), CONFIG, '--amp', '--work-dir',
        str(tmp_path), '--cfg-options'
    ] + _small_set(data_root) + ['train_cfg.max_epochs=1'], ROOT)
    assert "type='sdt3_mm.BF16OptimWrapper'" in log
    assert 'accuracy/top1' in log
    assert osp.isfile(osp.join(str(tmp_path), 'epoch_1.pth'))


def test_amp_dtype_without_amp_is_refused(tmp_path):
    result = subprocess.run([
        sys.executable,
        osp.join(ROOT, 'tools/train.py'), CONFIG, '--amp-dtype', 'bf16',
        '--work-dir',
        str(tmp_path)
    ],
                            capture_output=True,
                            text=True,
                            cwd=ROOT)
    assert result.returncode != 0
    assert '--amp-dtype is given without --amp' in result.stderr


def _damaged_checkpoint(folder, damage):
    """A checkpoint of the demo classifier with ``damage`` done to it."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    path = osp.join(folder, f'{damage}.pth')
    if damage == 'empty':
        open(path, 'wb').close()
        return path, r'it is empty \(0 bytes\)'
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(Config.fromfile(CONFIG).model)
    state = model.state_dict()
    key = 'backbone.stages.0.0.conv1.conv.weight'
    if damage == 'nan_backbone':
        state[key].view(-1)[7] = float('nan')
        expected = f'{key} \\(1 NaN of '
    elif damage == 'inf_running_var':
        key = next(k for k in state if k.endswith('running_var'))
        state[key][0] = float('inf')
        expected = f'{key} \\(1 Inf of '
    torch.save({'state_dict': state, 'meta': {}}, path)
    if damage == 'zeroed':
        import zipfile
        with zipfile.ZipFile(path) as archive:
            record = max(archive.infolist(), key=lambda i: i.file_size)
        with open(path, 'r+b') as f:  # 4 KiB inside the largest record
            f.seek(record.header_offset + record.file_size // 2)
            f.write(bytes(4096))
        expected = f'record {record.filename} fails its CRC check'
    return path, expected


@pytest.mark.parametrize(
    'damage', ['nan_backbone', 'inf_running_var', 'zeroed', 'empty'])
def test_test_tool_refuses_a_damaged_checkpoint(tmp_path, damage):
    """Before: NaN or Inf weights evaluated with rc 0 ('accuracy/top1: 0.0,
    spike/firing_rate: nan'), 4 KiB zeroed inside a record loaded as other
    weights, an empty file raised a bare EOFError."""
    path, expected = _damaged_checkpoint(str(tmp_path), damage)
    result = _run([
        osp.join(ROOT, 'tools/test.py'), CONFIG, path, '--work-dir',
        str(tmp_path / 'work'), '--cfg-options'
    ] + _small_set(str(tmp_path / 'shapes')))
    assert result.returncode != 0
    assert 'accuracy/top1' not in result.stdout
    message = result.stderr.strip().splitlines()[-1]
    assert path in message, message
    assert re.search(expected, message), message
