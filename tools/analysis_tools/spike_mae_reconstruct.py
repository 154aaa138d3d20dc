"""Save what a spike-masked autoencoder reconstructs, as a PNG.

One row per image: the original, the input with its masked patches grey,
and the reconstruction (visible patches from the input, masked ones from
the prediction, whose per-patch normalisation is undone with the
original patch's mean and variance, as MAE visualisations do). Images
come from the config's training set, resized to its crop size.

Example::

    python tools/analysis_tools/spike_mae_reconstruct.py \
        configs/demo/spike-mae_e-spikeformer-tiny_shapes.py \
        work_dirs/spike-mae_e-spikeformer-tiny_shapes/iter_300.pth \
        --num-images 4 --out work_dirs/reconstructions.png
"""
import argparse
import os
import os.path as osp

import mmcv
import numpy as np
import torch
from mmengine.dataset import Compose
from mmengine.registry import DATASETS
from model_inputs import add_model_arguments, build_analysis_model

import sdt3_mm  # noqa: F401  (registries)


def parse_args():
    parser = argparse.ArgumentParser(
        description='Reconstructions of a spike-masked autoencoder')
    add_model_arguments(parser, presets=False)
    parser.add_argument('--num-images', type=int, default=4)
    parser.add_argument('--seed', type=int, default=0, help='mask seed')
    parser.add_argument(
        '--out', default='work_dirs/spike_mae_reconstructions.png')
    return parser.parse_args()


def crop_size(cfg):
    for transform in cfg.train_dataloader.dataset.pipeline:
        if transform['type'] == 'RandomResizedCrop':
            return transform['scale']
    return 224


def load_images(cfg, num_images):
    """The first ``num_images`` training images, resized, as uint8."""
    dataset_cfg = cfg.train_dataloader.dataset.copy()
    size = crop_size(cfg)
    dataset_cfg.pipeline = []
    dataset = DATASETS.build(dataset_cfg)
    pipeline = Compose([
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(size, size)),
        dict(type='PackInputs')
    ])
    packed = [
        pipeline(dataset.get_data_info(i))['inputs']
        for i in range(min(num_images, len(dataset)))
    ]
    return torch.stack(packed)


def to_pixels(model, images):
    """Normalised ``B x 3 x H x W`` back to uint8 ``B x H x W x 3`` (RGB)."""
    preprocessor = model.data_preprocessor
    pixels = images * preprocessor.std + preprocessor.mean
    return pixels.clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


def reconstruct(model, images, seed):
    head = model.head
    torch.manual_seed(seed)
    with torch.no_grad():
        pred, visible = model.reconstruct(images)
        masked = 1 - visible.flatten(1)
        loss = head.loss(pred, images, masked).item()
        target = head.patchify(images)
        mean = target.mean(-1, keepdim=True)
        std = (target.var(-1, keepdim=True) + 1e-6)**.5
        patches = torch.where(
            masked.unsqueeze(-1).bool(), pred * std + mean, target)
        grey = torch.where(
            masked.unsqueeze(-1).bool(), torch.zeros_like(target), target)
    return head.unpatchify(grey), head.unpatchify(patches), loss


def main():
    args = parse_args()
    model, cfg = build_analysis_model(args.target, args.checkpoint,
                                      args.cfg_options)
    raw = load_images(cfg, args.num_images)
    images = model.data_preprocessor(
        dict(inputs=raw, data_samples=None), False)['inputs']
    masked, reconstructed, loss = reconstruct(model, images, args.seed)
    rows = [
        np.concatenate([to_pixels(model, t)[i] for t in columns], axis=1)
        for columns in [(images, masked, reconstructed)]
        for i in range(images.shape[0])
    ]
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    mmcv.imwrite(np.concatenate(rows, axis=0)[..., ::-1], args.out)
    print(f'masked-patch loss on these {images.shape[0]} images: {loss:.4f}')
    print(f'written {args.out} (original | masked | reconstructed)')


if __name__ == '__main__':
    main()
