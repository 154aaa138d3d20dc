"""tools/train.py on the spike-masked-autoencoder demo, and the
reconstruction tool on its checkpoint."""
import os.path as osp

import mmcv
from tool_runner import ROOT, run_tool

CONFIG = osp.join(ROOT, 'configs/demo/spike-mae_e-spikeformer-tiny_shapes.py')


def test_pretrain_then_save_reconstructions(tmp_path):
    work_dir = str(tmp_path / 'work')
    options = [
        f'train_dataloader.dataset.data_root={tmp_path / "shapes"}',
        'train_dataloader.dataset.num_train=48',
        'train_dataloader.dataset.num_val=8', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'train_dataloader.batch_size=8', 'train_cfg.max_iters=10',
        'default_hooks.checkpoint.interval=10'
    ]
    log = run_tool([
        osp.join(ROOT, 'tools/train.py'), CONFIG, '--work-dir', work_dir,
        '--cfg-options'
    ] + options)
    assert 'Iter(train) [10/10]' in log and 'loss:' in log
    checkpoint = osp.join(work_dir, 'iter_10.pth')
    out = str(tmp_path / 'recon.png')
    printed = run_tool([
        osp.join(ROOT, 'tools/analysis_tools/spike_mae_reconstruct.py'),
        CONFIG, checkpoint, '--num-images', '3', '--out', out, '--cfg-options'
    ] + options[:3])
    assert 'masked-patch loss on these 3 images' in printed
    # three rows of 64 x 64 crops: original | masked | reconstructed
    assert mmcv.imread(out).shape == (3 * 64, 3 * 64, 3)
