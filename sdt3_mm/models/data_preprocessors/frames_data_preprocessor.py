"""Data preprocessor for samples of frames (event cameras, video)."""
import torch
from mmpretrain.models.utils import ClsDataPreprocessor

from sdt3_mm.registry import MODELS


@MODELS.register_module()
class FramesDataPreprocessor(ClsDataPreprocessor):
    """MMPretrain's classification preprocessing for ``T x C x H x W``
    samples, batched as ``B x T x C x H x W``.

    MMPretrain's :class:`ClsDataPreprocessor` assumes ``C x H x W`` images:
    under ``to_rgb`` it reverses dimension 1 whenever it has size 3, which
    for frames is time (three frames would be played backwards), and its
    normalisation broadcasts over ``C x H x W`` only. Here the frames are
    normalised per channel (the same for every frame), then folded into
    the channels (``B x (T * C) x H x W``) for MMPretrain's own padding,
    label handling and batch augmentations, so that ``CutMix`` cuts one
    box out of every frame and channel alike and ``Mixup`` mixes whole
    clips, and unfolded again. There is no ``to_rgb``: event frames have
    no colour order.

    Args:
        mean (Sequence[float], optional): Per-channel mean, subtracted from
            every frame; None for no normalisation (binary event frames).
            Defaults to None.
        std (Sequence[float], optional): Per-channel standard deviation,
            given with ``mean``. Defaults to None.
        pad_size_divisor (int): Pad height and width to a multiple of it.
            Defaults to 1.
        pad_value (float): Value of the padding. Defaults to 0.
        to_onehot (bool): One-hot ``gt_score`` labels. Defaults to False.
        num_classes (int, optional): Classes (for one-hot labels).
        batch_augments (dict, optional): MMPretrain's batch augmentations
            (``RandomBatchAugment`` settings: ``augments``, ``probs``).
    """

    def __init__(self,
                 mean=None,
                 std=None,
                 pad_size_divisor=1,
                 pad_value=0,
                 to_onehot=False,
                 num_classes=None,
                 batch_augments=None):
        super().__init__(
            pad_size_divisor=pad_size_divisor,
            pad_value=pad_value,
            to_rgb=False,
            to_onehot=to_onehot,
            num_classes=num_classes,
            batch_augments=batch_augments)
        if (mean is None) != (std is None):
            raise ValueError(f'{type(self).__name__}: give both mean and '
                             f'std, or neither (got mean={mean!r}, '
                             f'std={std!r})')
        self.normalize_frames = mean is not None
        if self.normalize_frames:
            mean = torch.as_tensor(mean, dtype=torch.float32)
            std = torch.as_tensor(std, dtype=torch.float32)
            if mean.shape != std.shape or mean.dim() != 1:
                raise ValueError(
                    f'{type(self).__name__}: mean and std must be '
                    f'per-channel sequences of one length, got '
                    f'{mean.tolist()} and {std.tolist()}')
            self.register_buffer('frame_mean', mean.view(-1, 1, 1), False)
            self.register_buffer('frame_std', std.view(-1, 1, 1), False)

    def forward(self, data, training=False):
        inputs = self.cast_data(data['inputs'])
        if not isinstance(inputs, torch.Tensor):
            shapes = sorted({tuple(x.shape) for x in inputs})
            if len(shapes) != 1:
                raise ValueError(
                    f'{type(self).__name__}: the samples of a batch must have '
                    f'one shape (T x C x H x W), got {shapes}')
            inputs = torch.stack(list(inputs))
        if inputs.dim() != 5:
            raise ValueError(
                f'{type(self).__name__} expects samples of T x C x H x W '
                f'frames (a B x T x C x H x W batch), got a batch of shape '
                f'{tuple(inputs.shape)}')
        inputs = inputs.float()
        if self.normalize_frames:
            if inputs.shape[2] != self.frame_mean.shape[0]:
                raise ValueError(
                    f'{type(self).__name__}: mean and std have '
                    f'{self.frame_mean.shape[0]} channels, the frames '
                    f'{inputs.shape[2]} (batch of shape '
                    f'{tuple(inputs.shape)})')
            inputs = (inputs - self.frame_mean) / self.frame_std
        num_frames = inputs.shape[1]
        result = super().forward(
            dict(data, inputs=inputs.flatten(1, 2)), training)
        result['inputs'] = result['inputs'].unflatten(1, (num_frames, -1))
        return result
