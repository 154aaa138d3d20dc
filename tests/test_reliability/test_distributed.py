"""tools/dist_train.sh runs mmengine's DDP with gloo on two CPU processes,
and both ranks end with the same weights."""
import os
import os.path as osp
import socket
import subprocess
import sys

import torch

from sdt3_mm.reliability import safe_torch_load

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HERE = osp.dirname(osp.abspath(__file__))
CONFIG = osp.join(ROOT, 'configs/demo/e-spikeformer-t_shapes-cls.py')


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_two_cpu_processes_agree(tmp_path):
    work_dir = str(tmp_path / 'work')
    env = dict(os.environ)
    env['PATH'] = osp.dirname(sys.executable) + os.pathsep + env['PATH']
    env['PYTHONPATH'] = HERE + os.pathsep + env.get('PYTHONPATH', '')
    env['PORT'] = str(_free_port())
    env['OMP_NUM_THREADS'] = '1'
    config = tmp_path / 'dist_cfg.py'
    config.write_text(
        f'_base_ = [{CONFIG!r}]\n'
        "custom_imports = dict(imports=['sdt3_mm', 'rank_weights_hook'])\n"
        "custom_hooks = [dict(type='RankWeightsHook')]\n")
    options = [
        f'train_dataloader.dataset.data_root={tmp_path / "shapes"}',
        'train_dataloader.dataset.num_train=32',
        'train_dataloader.dataset.num_val=6', 'train_dataloader.batch_size=8',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False', 'train_cfg.max_epochs=1'
    ]
    result = subprocess.run([
        'bash',
        osp.join(ROOT, 'tools/dist_train.sh'),
        str(config), '2', '--work-dir', work_dir, '--no-validate',
        '--cfg-options', *options
    ],
                            cwd=ROOT,
                            env=env,
                            capture_output=True,
                            text=True,
                            timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert 'Distributed training: True' in log
    assert "'backend': 'gloo'" in log
    rank0 = torch.load(osp.join(work_dir, 'rank0.pth'), weights_only=True)
    rank1 = torch.load(osp.join(work_dir, 'rank1.pth'), weights_only=True)
    saved = safe_torch_load(osp.join(work_dir, 'epoch_1.pth'))['state_dict']
    assert rank0.keys() == rank1.keys() == saved.keys()
    # Parameters are all-reduced; BN running statistics are per rank.
    params = [
        k for k in rank0
        if 'running_' not in k and 'num_batches_tracked' not in k
    ]
    assert len(params) > 300
    for key in params:
        assert torch.equal(rank0[key], rank1[key]), key
        assert torch.equal(rank0[key], saved[key]), key
    assert not torch.equal(
        rank0['backbone.stages.3.0.mlp.fc1.bn.weight'],
        torch.ones_like(rank0['backbone.stages.3.0.mlp.fc1.bn.weight']))
