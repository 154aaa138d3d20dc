"""Mixed-precision training in bfloat16, on GPUs and CPUs alike."""
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper

from sdt3_mm.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class BF16OptimWrapper(OptimWrapper):
    """Run the forward under bfloat16 autocast; keep weights in fp32.

    bfloat16 has the exponent range of fp32, so small gradients do not
    underflow and no loss scaling is needed. mmengine's
    ``AmpOptimWrapper`` (fp16 with a ``GradScaler``) refuses to start
    without a GPU; this wrapper autocasts on the device the model's
    parameters are on, CPU included (where bf16 matmuls and convolutions
    run natively on CPUs with AVX512-BF16 or AMX).

    Spike counts are small integers, exact in bfloat16; what loses
    precision are the sums feeding the neurons (convolutions, ``k^T v``),
    rounded to bfloat16's 8-bit mantissa.

    Use it as ``optim_wrapper = dict(type='sdt3_mm.BF16OptimWrapper',
    optimizer=...)``, or ``tools/train.py CONFIG --amp --amp-dtype bf16``.

    Args:
        **kwargs: Arguments of mmengine's ``OptimWrapper``.
    """

    @contextmanager
    def optim_context(self, model):
        device = next(model.parameters()).device.type
        with super().optim_context(model), torch.autocast(
                device, dtype=torch.bfloat16):
            yield
