"""Run a convolutional spiking encoder sparsely: masked regions stay empty.

Masked autoencoding of a network with convolutions has a leak a ViT does
not have: a conv near a masked region reads it, and BatchNorm statistics
mix visible and masked positions. Inside :class:`SparseMasking`, the input
is zeroed where masked, and the output of every conv (2d and 1d) and every
BatchNorm is multiplied by the visible mask at its resolution, BN
statistics being taken over visible positions only. Neurons map 0 to 0,
residual sums of zeros are zero, and linear attention sums over tokens,
so a masked position holds exactly zero at every layer and no layer's
visible output depends on what was masked.
"""
import functools

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def _visible_at(mask, x):
    """The visible mask (1 = visible) broadcast to ``x``'s positions.

    Args:
        mask (Tensor): ``B x h x w``, 1 where visible.
        x (Tensor): ``B x C x H x W`` with ``H, W`` multiples of ``h, w``,
            or ``B x C x (h * w)`` tokens.
    """
    if x.dim() == 3:
        return mask.flatten(1).unsqueeze(1).to(x.dtype)
    height, width = x.shape[2:]
    if height % mask.shape[1] or width % mask.shape[2]:
        raise ValueError(f'SparseMasking: a {height} x {width} map is not a '
                         f'whole multiple of the {tuple(mask.shape[1:])} '
                         f'mask grid')
    visible = mask.repeat_interleave(height // mask.shape[1], dim=1)
    visible = visible.repeat_interleave(width // mask.shape[2], dim=2)
    return visible.unsqueeze(1).to(x.dtype)


def sparse_batch_norm(bn, x, visible):
    """BatchNorm over the visible positions only; masked ones stay zero.

    In training the batch statistics (and the running estimates) come
    from the visible positions; in evaluation the running statistics are
    used as usual.
    """
    shape = (1, -1) + (1, ) * (x.dim() - 2)
    if bn.training:
        dims = [0] + list(range(2, x.dim()))
        count = visible.expand_as(x).sum(dims)
        mean = (x * visible).sum(dims) / count
        var = (((x - mean.view(shape)) * visible)**2).sum(dims) / count
        with torch.no_grad():
            momentum = bn.momentum if bn.momentum is not None else 0.1
            bn.running_mean.lerp_(mean, momentum)
            bn.running_var.lerp_(var * count / (count - 1).clamp(min=1),
                                 momentum)
            bn.num_batches_tracked += 1
    else:
        mean, var = bn.running_mean, bn.running_var
    y = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + bn.eps)
    if bn.affine:
        y = y * bn.weight.view(shape) + bn.bias.view(shape)
    return y * visible


class SparseMasking:
    """Context manager: run ``encoder`` sparsely for a patch ``mask``.

    Example::

        with SparseMasking(backbone, visible):   # visible: B x h x w
            feats = backbone(images * upsampled visible)

    Args:
        encoder (nn.Module): The encoder (convs, BNs, neurons, attention).
        visible (Tensor): ``B x h x w``, 1 where a patch is visible.
    """

    def __init__(self, encoder, visible):
        self.encoder = encoder
        self.visible = visible
        self._handles = []
        self._patched = []

    def __enter__(self):
        for module in self.encoder.modules():
            if isinstance(module, (nn.Conv1d, nn.Conv2d)):
                self._handles.append(
                    module.register_forward_hook(self._mask_output))
            elif isinstance(module, _BatchNorm):
                self._patched.append(module)
                module.forward = functools.partial(self._norm, module)
        return self

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()
        for module in self._patched:
            del module.forward
        self._handles.clear()
        self._patched.clear()

    def _mask_output(self, module, inputs, output):
        return output * _visible_at(self.visible, output)

    def _norm(self, bn, x):
        return sparse_batch_norm(bn, x, _visible_at(self.visible, x))

    def mask_input(self, images):
        """Zero the masked patches of the input images."""
        return images * _visible_at(self.visible, images)
