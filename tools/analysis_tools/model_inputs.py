"""What the analysis tools share: their model and input arguments, and
the model to analyse, built with its checkpoint read weights-only.

Imported by the scripts of this folder from their own folder (Python puts
a script's folder on ``sys.path``), so they run from any working
directory.
"""
from mmengine.config import DictAction

from sdt3_mm.analysis import model_inputs
from sdt3_mm.reliability import safe_checkpoint_loading

analysis_batches = model_inputs.analysis_batches


def add_model_arguments(parser, presets=True):
    """Add the model arguments the analysis tools share: the target (a
    config, or with ``presets`` also a backbone preset), a checkpoint
    (optional with ``presets``) and ``--cfg-options``."""
    if presets:
        parser.add_argument(
            'target',
            help='config file, or an ESpikeFormer preset (t, s, ...)')
        parser.add_argument('checkpoint', nargs='?', help='checkpoint file')
    else:
        parser.add_argument('target', help='config file')
        parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value')


def add_input_arguments(parser, num_images, batch_size):
    """Add ``--num-images``, ``--batch-size`` and ``--size`` (the image size
    of a preset's random inputs) for :func:`analysis_batches`."""
    parser.add_argument('--num-images', type=int, default=num_images)
    parser.add_argument('--batch-size', type=int, default=batch_size)
    parser.add_argument(
        '--size',
        type=int,
        nargs=2,
        default=[224, 224],
        metavar=('H', 'W'),
        help='image size for a preset')


def build_analysis_model(target, checkpoint=None, cfg_options=None):
    """:func:`sdt3_mm.analysis.model_inputs.build_analysis_model`, with
    mmengine reading the checkpoint through ``safe_torch_load``, so that a
    runner checkpoint (``epoch_N.pth``) loads under torch's weights-only
    default."""
    with safe_checkpoint_loading():
        return model_inputs.build_analysis_model(target, checkpoint,
                                                 cfg_options)
