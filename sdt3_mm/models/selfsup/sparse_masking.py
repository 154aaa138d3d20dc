"""Run a convolutional spiking encoder sparsely: masked regions stay empty.

Masked autoencoding of a network with convolutions has a leak a ViT does
not have: a conv near a masked region reads it, and BatchNorm statistics
mix visible and masked positions. An encoder converted by
:meth:`SparseMasking.convert` runs sparsely whenever its
:class:`SparseMasking` holds a visible mask: the caller zeroes the input
where masked (:meth:`SparseMasking.mask_input`), the output of every conv
(2d and 1d) and every BatchNorm is multiplied by the visible mask at its
resolution, and BN statistics are taken over visible positions only.
Neurons map 0 to 0, residual sums of zeros are zero, and linear attention
sums over tokens, so a masked position holds exactly zero at every layer
and no layer's visible output depends on what was masked. While no mask is
held, the converted encoder computes exactly what the plain one does.

The conversion is made once, when the model is built: every BatchNorm
becomes a :class:`MaskedBatchNorm1d` / :class:`MaskedBatchNorm2d` (the
same parameter and buffer objects, so the same state-dict keys), and
every conv gets a permanent forward hook, :class:`MaskConvOutput`. Both
read the mask from the :class:`SparseMasking` object at call time. Nothing
is patched, attached or detached around a forward, so a forward run again
later (activation checkpointing's recomputation in backward) runs the
same modules and hooks, and, the mask being still held, computes the same.
"""
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
    if x.dim() not in (3, 4):
        raise ValueError(f'SparseMasking: cannot mask a {x.dim()}-d tensor '
                         f'(B x C x H x W maps or B x C x L tokens)')
    if x.dim() == 3:
        if x.shape[2] != mask.shape[1] * mask.shape[2]:
            raise ValueError(f'SparseMasking: {x.shape[2]} tokens are not the '
                             f'{tuple(mask.shape[1:])} mask grid\'s '
                             f'{mask.shape[1] * mask.shape[2]}')
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

    In training (or without running statistics) the batch statistics come
    from the visible positions, and in training they update the running
    estimates as ``bn`` would (``momentum``, or a cumulative average when
    it is None); in evaluation the running statistics are used as usual.
    Statistics are computed in at least float32; the output has ``x``'s
    dtype, as ``nn.BatchNorm`` gives under autocast.

    Args:
        bn (_BatchNorm): The norm whose parameters and buffers are used.
        x (Tensor): ``B x C x ...`` input.
        visible (Tensor): 1 where visible, broadcastable to ``x``.
    """
    out_dtype = x.dtype
    x = x.to(torch.promote_types(x.dtype, torch.float32))
    visible = visible.to(x.dtype)
    shape = (1, -1) + (1, ) * (x.dim() - 2)
    if bn.training or bn.running_mean is None:
        dims = [0] + list(range(2, x.dim()))
        count = visible.expand_as(x).sum(dims)
        mean = (x * visible).sum(dims) / count
        var = (((x - mean.view(shape)) * visible)**2).sum(dims) / count
        if bn.training and bn.track_running_stats:
            with torch.no_grad():
                bn.num_batches_tracked += 1
                if bn.momentum is None:
                    momentum = 1. / float(bn.num_batches_tracked)
                else:
                    momentum = bn.momentum
                running_mean, running_var = bn.running_mean, bn.running_var
                running_mean.lerp_(mean.to(running_mean.dtype), momentum)
                unbiased = var * count / (count - 1).clamp(min=1)
                running_var.lerp_(unbiased.to(running_var.dtype), momentum)
    else:
        mean, var = bn.running_mean.to(x.dtype), bn.running_var.to(x.dtype)
    y = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + bn.eps)
    if bn.affine:
        y = y * bn.weight.view(shape) + bn.bias.view(shape)
    return (y * visible).to(out_dtype)


class SparseMasking:
    """The visible mask a converted encoder reads, and the conversion.

    One object per model (:class:`~.SpikeMAE` owns one): :meth:`convert`
    makes its encoder read this object's mask, :meth:`set` gives the mask
    of the next forward, :meth:`clear` returns the encoder to plain
    computation. Example::

        masking = SparseMasking()
        masking.convert(backbone)              # once, at build time
        masking.set(visible)                   # visible: B x h x w
        feats = backbone(masking.mask_input(images))
        loss_of(feats).backward()              # the mask is still held

    **Lifetime of the mask.** A mask stays held until the next
    :meth:`set` or :meth:`clear`; it is not cleared when the forward
    returns, because backward may run the forward again
    (``with_cp=True``: each checkpointed block is recomputed in backward
    and must see the mask it saw in the forward). So the backward of a
    masked forward must run before the mask is replaced: set a mask,
    forward, backward, then the next mask (the order of a training step;
    a second masked forward before the first one's backward would have
    the first one's recomputation read the second mask).
    """

    def __init__(self):
        self._visible = None

    @property
    def visible(self):
        """Tensor or None: the mask held, ``B x h x w``, 1 where visible."""
        return self._visible

    def set(self, visible):
        """Hold ``visible`` (``B x h x w``, 1 where a patch is visible)."""
        if not isinstance(visible, torch.Tensor) or visible.dim() != 3:
            raise ValueError(f'SparseMasking: the mask must be a B x h x w '
                             f'tensor, got {getattr(visible, "shape", None)}')
        self._visible = visible

    def clear(self):
        """Hold no mask: the converted encoder computes as the plain one."""
        self._visible = None

    def at(self, x):
        """The held mask at ``x``'s resolution (``B x 1 x H x W`` or
        ``B x 1 x L``, ``x``'s dtype), or None when no mask is held."""
        if self._visible is None:
            return None
        return _visible_at(self._visible, x)

    def mask_input(self, images):
        """Zero the masked patches of the input images."""
        visible = self.at(images)
        return images if visible is None else images * visible

    def convert(self, encoder):
        """Make ``encoder`` (in place, once) read this object's mask.

        Every ``BatchNorm1d`` / ``BatchNorm2d`` below ``encoder`` is
        replaced by its masked counterpart holding the same parameter and
        buffer objects (same state-dict keys and values, same
        ``requires_grad`` and training mode), and every ``nn.Conv1d`` /
        ``nn.Conv2d`` (subclasses included) gets a permanent
        :class:`MaskConvOutput` forward hook.

        Args:
            encoder (nn.Module): The encoder (convs, BNs, neurons,
                attention).

        Returns:
            nn.Module: ``encoder``.
        """
        if any(
                isinstance(m, _MaskedNormMixin) or _mask_hooks(m)
                for m in encoder.modules()):
            raise ValueError('SparseMasking: the encoder is already '
                             'converted')
        masked = {}
        for parent in list(encoder.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, _BatchNorm):
                    if id(child) not in masked:
                        masked[id(child)] = _masked_norm(child, self)
                    setattr(parent, name, masked[id(child)])
        for module in encoder.modules():
            if isinstance(module, (nn.Conv1d, nn.Conv2d)):
                module.register_forward_hook(MaskConvOutput(self))
        return encoder

    def check(self, encoder):
        """Raise unless every BN and conv of ``encoder`` reads this mask
        (a BN replaced after :meth:`convert`, e.g. by a SyncBN
        conversion, would let masked positions into the statistics)."""
        for name, module in encoder.named_modules():
            if isinstance(module, _BatchNorm):
                ok = isinstance(module, _MaskedNormMixin) and \
                    module.sparse_masking is self
            elif isinstance(module, (nn.Conv1d, nn.Conv2d)):
                ok = any(hook.masking is self for hook in _mask_hooks(module))
            else:
                continue
            if not ok:
                raise RuntimeError(
                    f'SparseMasking: {name} ({type(module).__name__}) does '
                    f'not read this mask; was the encoder changed after '
                    f'SparseMasking.convert (a SyncBN conversion, say)?')


class MaskConvOutput:
    """Forward hook of a conv: its output times the visible mask held by
    ``masking`` at the output's resolution; the output unchanged while no
    mask is held."""

    def __init__(self, masking):
        self.masking = masking

    def __call__(self, module, inputs, output):
        visible = self.masking.at(output)
        if visible is None:
            return None
        return output * visible


def _mask_hooks(module):
    return [
        hook for hook in module._forward_hooks.values()
        if isinstance(hook, MaskConvOutput)
    ]


class _MaskedNormMixin:
    """BatchNorm reading ``self.sparse_masking``: with a mask held,
    :func:`sparse_batch_norm`; without, the plain BatchNorm."""

    #: The :class:`SparseMasking` read (a reference, not a submodule).
    sparse_masking = None

    def forward(self, x):
        visible = None
        if self.sparse_masking is not None:
            visible = self.sparse_masking.at(x)
        if visible is None:
            return super().forward(x)
        self._check_input_dim(x)
        return sparse_batch_norm(self, x, visible)

    @classmethod
    def from_plain(cls, bn, masking):
        """The masked BN holding ``bn``'s parameters and buffers."""
        norm = cls(
            bn.num_features,
            eps=bn.eps,
            momentum=bn.momentum,
            affine=bn.affine,
            track_running_stats=bn.track_running_stats)
        for name, param in bn._parameters.items():
            setattr(norm, name, param)
        for name, buffer in bn._buffers.items():
            setattr(norm, name, buffer)
        norm.train(bn.training)
        norm.sparse_masking = masking
        return norm


class MaskedBatchNorm1d(_MaskedNormMixin, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` that runs :func:`sparse_batch_norm` while its
    :class:`SparseMasking` holds a mask. Same parameters and buffers."""


class MaskedBatchNorm2d(_MaskedNormMixin, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` that runs :func:`sparse_batch_norm` while its
    :class:`SparseMasking` holds a mask. Same parameters and buffers."""


def _masked_norm(bn, masking):
    # Exact types: a subclass (SyncBatchNorm, BatchNorm3d, another
    # library's norm) may compute differently and is refused.
    for plain, masked in ((nn.BatchNorm1d, MaskedBatchNorm1d),
                          (nn.BatchNorm2d, MaskedBatchNorm2d)):
        if type(bn) is plain:
            return masked.from_plain(bn, masking)
    raise TypeError(f'SparseMasking: cannot run a {type(bn).__name__} '
                    f'sparsely (BatchNorm1d and BatchNorm2d can be)')
