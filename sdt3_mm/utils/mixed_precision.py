"""Mixed-precision training set up in a config."""
import torch


def use_mixed_precision(cfg, dtype=None):
    """Switch ``cfg``'s optim wrapper to mixed-precision training.

    Args:
        cfg (Config): The config to change in place.
        dtype (str, optional): ``'fp16'``: mmengine's ``AmpOptimWrapper``
            with dynamic loss scaling (GPU only); ``'bf16'``:
            :class:`~sdt3_mm.engine.BF16OptimWrapper`, without loss
            scaling, on any device. None: fp16 with a GPU, bf16 without.
    """
    if dtype is None:
        dtype = 'fp16' if torch.cuda.is_available() else 'bf16'
    if dtype not in ('fp16', 'bf16'):
        raise ValueError(f'mixed precision must be fp16 or bf16, got '
                         f'{dtype!r}')
    wrapper = cfg.optim_wrapper
    if dtype == 'fp16':
        if not torch.cuda.is_available():
            raise RuntimeError(
                'fp16 mixed precision needs a GPU (its loss scaling runs in '
                'mmengine\'s AmpOptimWrapper, which refuses CPUs); use bf16')
        wrapper.type = 'AmpOptimWrapper'
        wrapper.setdefault('loss_scale', 'dynamic')
    else:
        wrapper.type = 'sdt3_mm.BF16OptimWrapper'
        for key in ('loss_scale', 'dtype'):
            wrapper.pop(key, None)
