"""A training run killed after a checkpoint resumes to the same weights as
a run that was never interrupted."""
import os.path as osp
import signal
import subprocess
import time

import torch
from demo_runs import small_set_options, train_command

from sdt3_mm.reliability import safe_torch_load

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs/demo/e-spikeformer-t_shapes-cls.py')


def _train(work_dir, data_root, *extra):
    """The command line of three epochs of 4 batches of 16 images, a
    checkpoint after each."""
    # Fresh workers every epoch, seeded from the run's seed: the same
    # augmentations before and after a resume.
    data = small_set_options(
        data_root,
        num_train=64,
        num_val=6,
        loaders=('train_dataloader', ),
        batch_size=16,
        num_workers=1,
        persistent_workers=False)
    return train_command(
        CONFIG, work_dir, data + [
            'randomness.seed=0', 'randomness.deterministic=True',
            'train_cfg.max_epochs=3', 'default_hooks.checkpoint.interval=1',
            'default_hooks.checkpoint.max_keep_ckpts=3'
        ], *extra)


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    data_root = str(tmp_path / 'shapes')
    straight, killed = str(tmp_path / 'straight'), str(tmp_path / 'killed')
    subprocess.run(
        _train(straight, data_root), cwd=ROOT, check=True, capture_output=True)

    process = subprocess.Popen(
        _train(killed, data_root),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    # mmengine writes last_checkpoint once epoch_1.pth is complete.
    marker = osp.join(killed, 'last_checkpoint')
    deadline = time.time() + 300
    while not osp.isfile(marker) and process.poll() is None:
        assert time.time() < deadline, 'no checkpoint within 300 s'
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not osp.isfile(osp.join(killed, 'epoch_3.pth')), \
        'the run finished before it could be killed'

    result = subprocess.run(
        _train(killed, data_root, '--resume', osp.join(killed, 'epoch_1.pth')),
        cwd=ROOT,
        capture_output=True,
        text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'resumed epoch: 1' in result.stdout + result.stderr

    expected = safe_torch_load(osp.join(straight, 'epoch_3.pth'))
    resumed = safe_torch_load(osp.join(killed, 'epoch_3.pth'))
    assert expected['meta']['iter'] == resumed['meta']['iter'] == 12
    for key, value in expected['state_dict'].items():
        assert torch.equal(value, resumed['state_dict'][key]), key
