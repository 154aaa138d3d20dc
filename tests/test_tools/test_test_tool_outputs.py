"""tools/test.py's library options (``--show-dir``, ``--tta``, ``--out``)
on the classification, event, detection and segmentation demo configs, each
trained for a few iterations on a tiny generated set; and MMSegmentation's
own test.py with ``--show-dir`` and ``--tta`` on the segmentation demo.
The same checkpoints, published with tools/model_converters/publish_model.py,
in the libraries' own benchmark.py, inferencers and MMPretrain's get_model.

Every subprocess runs with ``OMP_NUM_THREADS=1``.
"""
import glob
import os
import os.path as osp
import pickle
import subprocess
import sys

import mmdet
import mmseg
import pytest
from demo_runs import IN_PROCESS, coco_evaluator_options, small_set_options
from tool_runner import ROOT

CONFIGS = {
    'cls': 'configs/demo/e-spikeformer-t_shapes-cls.py',
    'det': 'configs/demo/mask-rcnn_e-spikeformer-t_spike-fpn_shapes.py',
    'seg': 'configs/demo/fpn_e-spikeformer-t_spike-fpn_shapes-seg.py',
    'events': 'configs/demo/e-spikeformer-t_shapes-events.py',
}
MMDET_TOOLS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools')
MMSEG_TOOLS = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools')
TEST = osp.join(ROOT, 'tools', 'test.py')


def _run(args, ok=True):
    """Run ``python *args`` from the repository root on one thread.

    Returns:
        str: stdout and stderr together; with ``ok``, fails with their
        tail unless the process succeeded.
    """
    env = dict(os.environ, OMP_NUM_THREADS='1')
    result = subprocess.run(
        [sys.executable] + args,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True)
    out = result.stdout + result.stderr
    if ok:
        assert result.returncode == 0, out[-4000:]
    else:
        assert result.returncode != 0, out[-4000:]
    return out


def _options(task, data_root):
    """``--cfg-options`` for a tiny set (8 training and 4 test images,
    one batch) and a training of one or two iterations."""
    # data_root as the detection config writes it (MMDetection's trailing
    # '/').
    sep = '/' if task == 'det' else ''
    opts = small_set_options(
        data_root + sep, num_train=8, num_val=4, batch_size=4, **IN_PROCESS)
    if task == 'det':
        opts += coco_evaluator_options(data_root)
    if task == 'seg':
        # The config's own visualization hook settings: --show-dir must
        # paint every test image with them.
        return opts + [
            'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
            'default_hooks.checkpoint.interval=2'
        ]
    return opts + [
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        'default_hooks.checkpoint.interval=1'
    ]


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """A checkpoint per task: ``{task: (checkpoint, data_root)}``."""
    tmp = tmp_path_factory.mktemp('test_tool_outputs')
    result = {}
    for task, config in CONFIGS.items():
        work_dir = str(tmp / f'{task}_work')
        data_root = str(tmp / f'{task}_data')
        _run([
            osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir',
            work_dir, '--cfg-options'
        ] + _options(task, data_root))
        name = 'iter_2.pth' if task == 'seg' else 'epoch_1.pth'
        result[task] = (osp.join(work_dir, name), data_root)
        # The visualization hooks paint nothing unless a tool asks.
        assert _images(work_dir) == [], task
    return result


def _images(folder):
    return glob.glob(osp.join(folder, '**', '*.png'), recursive=True) + \
        glob.glob(osp.join(folder, '**', '*.jpg'), recursive=True)


def test_show_dir_writes_images_for_classification(checkpoints, tmp_path):
    checkpoint, data_root = checkpoints['cls']
    show_dir = str(tmp_path / 'show')
    out = _run([
        TEST, CONFIGS['cls'], checkpoint, '--work-dir',
        str(tmp_path), '--show-dir', show_dir, '--cfg-options'
    ] + _options('cls', data_root))
    assert "'accuracy/top1'" in out
    assert len(_images(show_dir)) == 4


def test_show_dir_paints_every_event_recording(checkpoints, tmp_path):
    """The event demo's sdt3_mm.EventVisualizationHook (before:
    MMPretrain's hook failed on the (T, 2, H, W) frames), one image per
    test recording."""
    checkpoint, data_root = checkpoints['events']
    show_dir = str(tmp_path / 'show')
    out = _run([
        TEST, CONFIGS['events'], checkpoint, '--work-dir',
        str(tmp_path), '--show-dir', show_dir, '--cfg-options'
    ] + _options('events', data_root))
    assert "'accuracy/top1'" in out
    painted = _images(show_dir)
    assert len(painted) == 4
    # the 32 x 32 frames at the config's rescale_factor 4
    from PIL import Image
    assert Image.open(painted[0]).size == (128, 128)


def test_detection_show_dir_and_out_in_mmdet_format(checkpoints, tmp_path):
    checkpoint, data_root = checkpoints['det']
    options = _options('det', data_root)
    show_dir = str(tmp_path / 'show')
    ours = str(tmp_path / 'ours.pkl')
    out = _run([
        TEST, CONFIGS['det'], checkpoint, '--work-dir',
        str(tmp_path), '--show-dir', show_dir, '--out', ours, '--cfg-options'
    ] + options)
    assert "'coco/segm_mAP':" in out
    assert len(_images(show_dir)) == 4
    # mmdet's DumpDetResults: plain dicts with RLE-encoded masks.
    with open(ours, 'rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == 4
    masks = predictions[0]['pred_instances']['masks']
    assert all(isinstance(m, dict) and 'counts' in m for m in masks)
    theirs = str(tmp_path / 'theirs.pkl')
    _run([
        osp.join(MMDET_TOOLS, 'test.py'), CONFIGS['det'], checkpoint,
        '--work-dir',
        str(tmp_path / 'mmdet'), '--out', theirs, '--cfg-options'
    ] + options)
    assert osp.getsize(ours) <= osp.getsize(theirs)
    metrics = _run([
        osp.join(MMDET_TOOLS, 'analysis_tools', 'eval_metric.py'),
        CONFIGS['det'], ours, '--cfg-options'
    ] + options)
    assert 'coco/bbox_mAP' in metrics and 'coco/segm_mAP' in metrics


def test_detection_tta_is_refused_for_masks(checkpoints, tmp_path):
    checkpoint, data_root = checkpoints['det']
    out = _run(
        [
            TEST, CONFIGS['det'], checkpoint, '--work-dir',
            str(tmp_path), '--tta', '--cfg-options'
        ] + _options('det', data_root),
        ok=False)
    assert '--tta' in out and 'instance segmentation' in out


def test_segmentation_show_dir_and_out(checkpoints, tmp_path):
    """Every test image is painted, also with mmseg's default hook
    interval (50 batches, as in its ADE20K configs), which alone would
    paint none of the 4 one-image batches."""
    checkpoint, data_root = checkpoints['seg']
    show_dir = str(tmp_path / 'show')
    pred_dir = str(tmp_path / 'pred')
    out = _run([
        TEST, CONFIGS['seg'], checkpoint, '--work-dir',
        str(tmp_path), '--show-dir', show_dir, '--out', pred_dir,
        '--cfg-options'
    ] + _options('seg', data_root) + [
        'default_hooks.visualization.interval=50',
        'test_dataloader.batch_size=1'
    ])
    assert "'mIoU':" in out
    assert len(_images(show_dir)) == 4
    # mmseg's --out: one prediction PNG per test image.
    assert len(glob.glob(osp.join(pred_dir, '*.png'))) == 4


@pytest.mark.parametrize('tool', ['ours', 'mmseg'])
def test_segmentation_show_dir_and_tta(checkpoints, tmp_path, tool):
    """Our test.py and MMSegmentation's own, with the config's tta_pipeline
    and mmseg's SegTTAModel (the checkpoint loads strictly into the model
    it wraps); both paint every test image with the config's hook."""
    checkpoint, data_root = checkpoints['seg']
    show_dir = str(tmp_path / 'show')
    script = TEST if tool == 'ours' else osp.join(MMSEG_TOOLS, 'test.py')
    out = _run([
        script, CONFIGS['seg'], checkpoint, '--work-dir',
        str(tmp_path), '--show-dir', show_dir, '--tta', '--cfg-options'
    ] + _options('seg', data_root))
    assert 'SegTTAModel' in out and 'mIoU' in out
    assert len(_images(show_dir)) == 4


# tools/model_converters/publish_model.py: the weights of a runner checkpoint
# in a file that the libraries' own loaders read (torch 2.13's default
# weights-only torch.load refuses the runner checkpoint's HistoryBuffers).

PUBLISH = osp.join(ROOT, 'tools', 'model_converters', 'publish_model.py')


def _publish(checkpoint, tmp_path, name):
    """Publish ``checkpoint`` as ``tmp_path/published/<name>-<sha>.pth``
    with the tool; returns the path it printed."""
    out = _run([PUBLISH, checkpoint, str(tmp_path / 'published' / name)])
    published = out.strip().splitlines()[-1].split('published ')[-1]
    assert osp.isfile(published), out
    return published


def test_publish_model_keeps_the_weights_only(checkpoints, tmp_path):
    import hashlib
    import re

    import torch

    from sdt3_mm.reliability import safe_torch_load
    checkpoint, _ = checkpoints['cls']
    published = _publish(checkpoint, tmp_path, 'cls.pth')
    with open(published, 'rb') as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    assert re.fullmatch(r'cls-[0-9a-f]{8}\.pth', osp.basename(published))
    assert osp.basename(published) == f'cls-{sha[:8]}.pth'
    # torch's default load, nothing allowed beyond its own types
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        torch.load(checkpoint, weights_only=True)
    ours = torch.load(published, weights_only=True)
    assert sorted(ours) == ['meta', 'state_dict']
    assert sorted(ours['meta']) == [
        'dataset_meta', 'epoch', 'iter', 'mmengine_version', 'sdt3_mm_version'
    ]
    assert len(ours['meta']['dataset_meta']['classes']) == 6
    runner = safe_torch_load(checkpoint)
    assert ours['state_dict'].keys() == runner['state_dict'].keys()
    assert all(
        torch.equal(v, runner['state_dict'][k])
        for k, v in ours['state_dict'].items())
    # the same weights give the same file
    assert _publish(checkpoint, tmp_path, 'cls.pth') == published


def test_publish_model_with_ema(tmp_path):
    """A run with mmengine's EMAHook: its averaged weights (the runner's
    state_dict) by default, with --no-ema the trained ones."""
    import torch

    from sdt3_mm.reliability import safe_torch_load
    config = str(tmp_path / 'ema.py')
    with open(config, 'w') as f:
        f.write(
            f'_base_ = {osp.join(ROOT, CONFIGS["cls"])!r}\n'
            'custom_hooks = [dict(type="sdt3_mm.SafeCheckpointLoadingHook"),'
            ' dict(type="EMAHook", momentum=0.5)]\n')
    work_dir = str(tmp_path / 'work')
    _run([
        osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir', work_dir,
        '--cfg-options'
    ] + _options('cls', str(tmp_path / 'data')))
    checkpoint = osp.join(work_dir, 'epoch_1.pth')
    runner = safe_torch_load(checkpoint)
    trained = {
        k[len('module.'):]: v
        for k, v in runner['ema_state_dict'].items() if k.startswith('module.')
    }
    averaged = _publish(checkpoint, tmp_path, 'ema.pth')
    out = _run([
        PUBLISH, checkpoint,
        str(tmp_path / 'published' / 'ema.pth'), '--no-ema'
    ])
    assert 'left out: ema_state_dict, message_hub' in out
    not_averaged = out.strip().splitlines()[-1].split('published ')[-1]
    assert not_averaged != averaged
    averaged = torch.load(averaged, weights_only=True)['state_dict']
    not_averaged = torch.load(not_averaged, weights_only=True)['state_dict']
    assert averaged.keys() == not_averaged.keys() == runner['state_dict'].keys(
    )
    changed = 0
    for k, v in averaged.items():
        assert torch.equal(v, runner['state_dict'][k])
        assert torch.equal(not_averaged[k], trained.get(k, v))
        changed += not torch.equal(v, not_averaged[k])
    assert changed > 0


def test_publish_model_refuses_what_is_not_a_checkpoint(tmp_path):
    import runpy

    import torch
    publish = runpy.run_path(PUBLISH)['publish']
    with pytest.raises(FileNotFoundError, match='missing.pth does not'):
        publish(str(tmp_path / 'missing.pth'), str(tmp_path / 'out.pth'))
    bad = str(tmp_path / 'bad.pth')
    torch.save(dict(state_dict=dict(w=torch.ones(1), step=3)), bad)
    with pytest.raises(ValueError, match=r"bad.pth .*not tensors: \['step'"):
        publish(bad, str(tmp_path / 'out.pth'))
    torch.save(dict(w=torch.ones(1)), bad)
    with pytest.raises(ValueError, match='--no-ema: .*bad.pth has no ema'):
        publish(bad, str(tmp_path / 'out.pth'), no_ema=True)
    assert sorted(os.listdir(tmp_path)) == ['bad.pth']


def test_published_classifier_in_get_model_and_inferencer(
        checkpoints, tmp_path, mmpretrain_scope):
    # (MMPretrain's inferencer builds its transforms in the current scope,
    # which a test before may have left at MMDetection's.)
    import torch
    from mmpretrain import ImageClassificationInferencer, get_model

    from sdt3_mm.datasets.demo import SHAPE_CLASSES
    checkpoint, data_root = checkpoints['cls']
    published = _publish(checkpoint, tmp_path, 'cls.pth')
    weights = torch.load(published, weights_only=True)['state_dict']
    model = get_model(osp.join(ROOT, CONFIGS['cls']), pretrained=published)
    assert all(
        torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    assert model._dataset_meta['classes'] == SHAPE_CLASSES
    image = sorted(glob.glob(osp.join(data_root, 'val', '*', '*.png')))[0]
    inferencer = ImageClassificationInferencer(
        osp.join(ROOT, CONFIGS['cls']), pretrained=published)
    assert inferencer(image)[0]['pred_class'] in SHAPE_CLASSES


def _small_test_config(task, data_root, tmp_path):
    """A config that is the demo's with its test set at ``data_root``
    (MMSegmentation's benchmark.py takes no --cfg-options)."""
    path = str(tmp_path / f'small_{task}.py')
    with open(path, 'w') as f:
        f.write(f'_base_ = {osp.join(ROOT, CONFIGS[task])!r}\n'
                f'test_dataloader = dict(num_workers=0, '
                f'persistent_workers=False, dataset=dict('
                f'data_root={data_root!r}, num_train=8, num_val=4))\n')
    return path


def test_published_segmentor_in_mmseg_benchmark_and_inferencer(
        checkpoints, tmp_path):
    from mmseg.apis import MMSegInferencer
    checkpoint, data_root = checkpoints['seg']
    published = _publish(checkpoint, tmp_path, 'seg.pth')
    config = _small_test_config('seg', data_root, tmp_path)
    benchmark = osp.join(MMSEG_TOOLS, 'analysis_tools', 'benchmark.py')
    out = _run([
        benchmark, config, checkpoint, '--work-dir',
        str(tmp_path / 'runner')
    ],
               ok=False)
    assert 'HistoryBuffer' in out
    out = _run(
        [benchmark, config, published, '--work-dir',
         str(tmp_path / 'bench')])
    assert f'Loads checkpoint by local backend from path: {published}' in out
    assert 'do not match exactly' not in out
    # (4 images, fewer than the 5 it leaves out as warm-up: no fps)
    assert glob.glob(str(tmp_path / 'bench' / 'fps_*.json'))
    inferencer = MMSegInferencer(
        osp.join(ROOT, CONFIGS['seg']), weights=published, device='cpu')
    image = sorted(
        glob.glob(osp.join(data_root, 'images', 'validation', '*.png')))[0]
    result = inferencer(image, return_datasamples=True)
    assert result.pred_sem_seg.data.shape == (1, 128, 128)


def test_published_detector_in_mmdet_benchmark_and_inferencer(
        checkpoints, tmp_path):
    """MMDetection's benchmark.py loads the published file; on a machine
    without CUDA it then stops at its ``model.cuda()``."""
    import torch
    from mmdet.apis import DetInferencer
    checkpoint, data_root = checkpoints['det']
    published = _publish(checkpoint, tmp_path, 'det.pth')
    gpu = torch.cuda.is_available()
    out = _run(
        [
            osp.join(MMDET_TOOLS, 'analysis_tools', 'benchmark.py'),
            osp.join(ROOT, CONFIGS['det']), '--checkpoint', published,
            '--task', 'inference', '--max-iter', '3', '--num-warmup', '1',
            '--log-interval', '1', '--cfg-options'
        ] + _options('det', data_root),
        ok=gpu)
    assert f'Loads checkpoint by local backend from path: {published}' in out
    assert 'Weights only load failed' not in out
    assert 'do not match exactly' not in out
    if gpu:
        assert 'Overall fps' in out
    else:
        assert 'model = model.cuda()' in out
    inferencer = DetInferencer(
        osp.join(ROOT, CONFIGS['det']), weights=published, device='cpu')
    image = sorted(glob.glob(osp.join(data_root, 'val', '*.png')))[0]
    result = inferencer(image, return_datasamples=True)
    assert 'masks' in result['predictions'][0].pred_instances
