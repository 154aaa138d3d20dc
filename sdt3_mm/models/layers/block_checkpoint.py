"""Activation checkpointing of a block that contains BatchNorms."""
from contextlib import contextmanager

import torch.utils.checkpoint as cp
from torch.nn.modules.batchnorm import _BatchNorm


@contextmanager
def _running_stats_kept(module):
    """Let ``module``'s training-mode BNs leave their running statistics
    (and batch counts) as they are."""
    norms = [
        m for m in module.modules()
        if isinstance(m, _BatchNorm) and m.training and m.track_running_stats
    ]
    kept = [(m.momentum, m.num_batches_tracked.clone()) for m in norms]
    for norm in norms:
        # running = (1 - momentum) * running + momentum * batch
        norm.momentum = 0.
    try:
        yield
    finally:
        for norm, (momentum, count) in zip(norms, kept):
            norm.momentum = momentum
            norm.num_batches_tracked.copy_(count)


def checkpoint_block(block, x):
    """``block(x)``, keeping only ``x`` for backward.

    Backward runs the block again to get its activations. Plain
    checkpointing would update every BN's running statistics a second time
    in that rerun; here the rerun leaves them as the forward set them, so
    the statistics, the outputs and the gradients are those of an ordinary
    forward and backward.

    Args:
        block (nn.Module): The block.
        x (Tensor): Its input.

    Returns:
        Tensor: ``block(x)``.
    """
    first_run = True

    def run(inputs):
        nonlocal first_run
        if first_run:
            first_run = False
            return block(inputs)
        with _running_stats_kept(block):
            return block(inputs)

    return cp.checkpoint(run, x, use_reentrant=False)
