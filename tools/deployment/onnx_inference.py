"""Run a model exported by ``pytorch2onnx.py`` with onnxruntime on image
files: no PyTorch model, no checkpoint, only the ONNX file and the config
(for the normalisation and the class names).

* classifier: prints the top-5 classes and scores of each image;
* segmentor: writes each image's label map (PNG, the image's own size)
  into ``--out-dir`` and prints the pixels per class;
* detector (backbone plus neck): prints the feature shapes.

The image is used at its own size (padded to a multiple of 32), as the
export has dynamic height and width; resize it first for a model trained
at one size.

Example::

    python tools/deployment/onnx_inference.py \
        configs/demo/e-spikeformer-t_shapes-cls.py cls.onnx \
        data/shapes_cls/val/0000.png
"""
import argparse
import os
import os.path as osp
import sys

from sdt3_mm.deployment import (describe_prediction, load_config,
                                onnx_inference, ort_session)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Run an exported model with onnxruntime on images')
    parser.add_argument(
        'config', help='the config the model was exported '
        'from')
    parser.add_argument('onnx', help='ONNX file written by pytorch2onnx.py')
    parser.add_argument('images', nargs='+', help='image files')
    parser.add_argument(
        '--out-dir',
        default='onnx_label_maps',
        help='directory for a segmentor\'s label maps')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    for path in [args.config, args.onnx, *args.images]:
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path} does not exist')
    cfg, scope = load_config(args.config)
    session = ort_session(args.onnx)
    for image in args.images:
        label_map = None
        if scope == 'mmseg':
            os.makedirs(args.out_dir, exist_ok=True)
            name = osp.splitext(osp.basename(image))[0] + '.png'
            label_map = osp.join(args.out_dir, name)
        result = onnx_inference(session, cfg, image)
        print(f'{image}:')
        for line in describe_prediction(cfg, result, label_map):
            print(f'  {line}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
