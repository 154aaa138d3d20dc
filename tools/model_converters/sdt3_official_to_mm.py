"""Convert an official E-SpikeFormer or Meta-SpikeFormer (V2) checkpoint
to an sdt3_mm checkpoint.

The output holds ``state_dict`` with ``backbone.*`` (ESpikeFormer /
MetaSpikeFormer names) and ``head.*`` keys (``head.fc`` and, for the large
family and V2, ``head.fc_kd``),
and can be given to ``load_from``, ``tools/test.py`` or a backbone's
``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.

Example::

    python tools/model_converters/sdt3_official_to_mm.py \
        e_spikeformer_19M.pth e-spikeformer-l_in1k.pth
"""
import argparse
import os
import os.path as osp

import torch

from sdt3_mm.reliability import (convert_official_state_dict, describe_arch,
                                 is_official_state_dict, model_state_dict,
                                 safe_torch_load)


def parse_args():
    parser = argparse.ArgumentParser(
        description='Convert an official E-SpikeFormer checkpoint to the '
        'sdt3_mm (OpenMMLab) layout.')
    parser.add_argument('src', help='official checkpoint (.pth)')
    parser.add_argument('dst', help='where to write the converted file')
    return parser.parse_args()


def convert(src, dst):
    """Convert ``src`` and write ``dst``; returns the architecture found."""
    if not osp.isfile(src):
        raise FileNotFoundError(f'checkpoint {src} does not exist')
    # Official training checkpoints carry their argparse namespace.
    with torch.serialization.safe_globals([argparse.Namespace]):
        checkpoint = safe_torch_load(src, map_location='cpu')
    state = model_state_dict(checkpoint)  # (a dict: safe_torch_load checks)
    if not is_official_state_dict(state):
        raise ValueError(
            f'{src} is not an official E-SpikeFormer checkpoint (it has no '
            f'downsample1_1.encode_conv.* keys)')
    backbone, head = convert_official_state_dict(state)
    state_dict = {f'backbone.{k}': v for k, v in backbone.items()}
    state_dict.update({f'head.{k}': v for k, v in head.items()})
    arch = describe_arch(backbone)
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(
        dict(
            state_dict=state_dict,
            meta=dict(source=osp.basename(src), arch=arch)), dst)
    return arch, len(backbone), sorted(head)


def main():
    args = parse_args()
    arch, num_backbone, head = convert(args.src, args.dst)
    print(f'{args.src}: {arch["family"]} family, stage widths '
          f'{arch["stage_channels"]}, {num_backbone} backbone tensors, '
          f'head tensors {head}')
    print(f'written {args.dst}')


if __name__ == '__main__':
    main()
