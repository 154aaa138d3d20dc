"""Transforms for clips of HARDVS event images (E-SpikeFormer's HARDVS
input, as the reference ``SDT_V3/DVS/Hardvs`` builds it).

Per frame, the reference runs torchvision on the PIL image: greyscale,
``Resize(256, BICUBIC)`` (shorter side to 256), ``CenterCrop(224)``,
``RandomHorizontalFlip(0.5)`` in training, ``ToTensor`` (``g = pixel /
255``), then two binary channels ``g < 0.12`` and ``0.3 < g <= 0.78``.
A full pipeline::

    [dict(type='sdt3_mm.LoadHARDVSClip', num_frames=8),
     dict(type='sdt3_mm.ResizeCenterCropFrames', scale=256, crop_size=224),
     dict(type='sdt3_mm.RandomFlipFrames', prob=0.5),   # training only
     dict(type='sdt3_mm.HARDVSDecode'),
     dict(type='PackInputs')]
"""
import os
import os.path as osp

import numpy as np
from mmcv.transforms import BaseTransform
from PIL import Image

from sdt3_mm.registry import TRANSFORMS
from .events import check_count

#: File endings read as frames.
FRAME_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp')


@TRANSFORMS.register_module()
class LoadHARDVSClip(BaseTransform):
    """Load ``num_frames`` consecutive frames of a folder of event images
    as greyscale PIL images.

    The frame files are sorted by name. In training the clip starts at a
    random frame (uniform over ``0 .. n - num_frames``, from NumPy's
    global generator, which MMEngine seeds); at test time it is the
    centre clip (start ``(n - num_frames) // 2``), so that evaluation is
    repeatable. A folder of fewer than ``num_frames`` frames gives all its
    frames; :class:`HARDVSDecode` pads the clip with all-zero frames, as
    the reference does.

    Differences from the reference: it takes the frames in
    ``os.listdir`` order (arbitrary, file-system dependent), and draws a
    random start at test time too.

    Required Keys:

    - frame_dir

    Added Keys:

    - frames (list[PIL.Image.Image]): ``min(n, num_frames)`` greyscale
      (``'L'``) images.
    - frame_inds (list[int]): Indices of the frames in the sorted listing.
    - total_frames (int): ``n``, the frames in the folder.
    - num_frames (int): ``num_frames``, the clip length to pad to.
    - img_shape, ori_shape (tuple[int, int]): Height and width of the
      frames.

    Args:
        num_frames (int): Frames per clip (T), a Python or NumPy integer.
            Defaults to 8.
        test_mode (bool): Take the centre clip instead of a random one.
            Defaults to False.

    Raises:
        FileNotFoundError: If ``frame_dir`` does not exist.
        ValueError: If it holds no frame.
    """

    def __init__(self, num_frames=8, test_mode=False):
        self.num_frames = check_count('LoadHARDVSClip', 'num_frames',
                                      num_frames)
        self.test_mode = test_mode

    def _start(self, total):
        if total <= self.num_frames:
            return 0
        if self.test_mode:
            return (total - self.num_frames) // 2
        return int(np.random.randint(0, total - self.num_frames + 1))

    def transform(self, results):
        frame_dir = results['frame_dir']
        if not osp.isdir(frame_dir):
            raise FileNotFoundError(
                f'LoadHARDVSClip: folder {frame_dir} does not exist')
        names = sorted(
            name for name in os.listdir(frame_dir)
            if name.lower().endswith(FRAME_EXTENSIONS))
        if not names:
            raise ValueError(
                f'LoadHARDVSClip: folder {frame_dir} holds no frame '
                f'({"/".join(FRAME_EXTENSIONS)} file)')
        start = self._start(len(names))
        inds = list(range(start, min(start + self.num_frames, len(names))))
        frames = []
        for i in inds:
            with Image.open(osp.join(frame_dir, names[i])) as img:
                frames.append(img.convert('L'))
        results['frames'] = frames
        results['frame_inds'] = inds
        results['total_frames'] = len(names)
        results['num_frames'] = self.num_frames
        results['img_shape'] = (frames[0].height, frames[0].width)
        results['ori_shape'] = results['img_shape']
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(num_frames={self.num_frames}, '
                f'test_mode={self.test_mode})')


@TRANSFORMS.register_module()
class ResizeCenterCropFrames(BaseTransform):
    """Resize every frame (shorter side to ``scale``, PIL resampling) and
    crop its centre, as torchvision's ``Resize(scale)`` and
    ``CenterCrop(crop_size)`` do on PIL images.

    Required Keys:

    - frames (list[PIL.Image.Image])

    Modified Keys:

    - frames
    - img_shape

    Args:
        scale (int): Length of the shorter side after resizing (a Python
            or NumPy integer, as every count here). Defaults to 256.
        crop_size (int): Side of the square centre crop. Defaults to 224.
        interpolation (str): ``'bicubic'``, ``'bilinear'`` or
            ``'nearest'``. Defaults to ``'bicubic'`` (the reference's).
    """

    def __init__(self, scale=256, crop_size=224, interpolation='bicubic'):
        from torchvision.transforms import InterpolationMode
        modes = dict(
            bicubic=InterpolationMode.BICUBIC,
            bilinear=InterpolationMode.BILINEAR,
            nearest=InterpolationMode.NEAREST)
        if interpolation not in modes:
            raise ValueError(f'ResizeCenterCropFrames: interpolation must be '
                             f'one of {sorted(modes)}, got {interpolation!r}')
        self.scale = check_count('ResizeCenterCropFrames', 'scale', scale)
        self.crop_size = check_count('ResizeCenterCropFrames', 'crop_size',
                                     crop_size)
        self.interpolation = interpolation
        self._mode = modes[interpolation]

    def transform(self, results):
        import torchvision.transforms.functional as TF
        frames = [
            TF.center_crop(
                TF.resize(frame, self.scale, interpolation=self._mode),
                self.crop_size) for frame in results['frames']
        ]
        results['frames'] = frames
        results['img_shape'] = (frames[0].height, frames[0].width)
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(scale={self.scale}, '
                f'crop_size={self.crop_size}, '
                f'interpolation={self.interpolation!r})')


@TRANSFORMS.register_module()
class RandomFlipFrames(BaseTransform):
    """Flip each frame left-right on its own, with probability ``prob``.

    As in the reference, where torchvision's ``RandomHorizontalFlip`` runs
    per frame: the frames of one clip are flipped independently (not the
    clip as a whole). Draws from NumPy's global generator.

    Required Keys:

    - frames (list[PIL.Image.Image])

    Modified Keys:

    - frames

    Added Keys:

    - flip (list[bool]): Which frames were flipped.

    Args:
        prob (float): Probability of flipping a frame. Defaults to 0.5.
    """

    def __init__(self, prob=0.5):
        if not 0 <= prob <= 1:
            raise ValueError(
                f'RandomFlipFrames: prob must be in [0, 1], got {prob!r}')
        self.prob = prob

    def transform(self, results):
        flips = [bool(np.random.rand() < self.prob) for _ in results['frames']]
        results['frames'] = [
            frame.transpose(Image.FLIP_LEFT_RIGHT) if flip else frame
            for frame, flip in zip(results['frames'], flips)
        ]
        results['flip'] = flips
        return results

    def __repr__(self):
        return f'{type(self).__name__}(prob={self.prob})'


@TRANSFORMS.register_module()
class HARDVSDecode(BaseTransform):
    """Turn greyscale event images into two binary channels, padded to the
    clip length with all-zero frames.

    With ``g = pixel / 255`` in float32 (torchvision's ``ToTensor``),
    channel 0 is ``g < low`` and channel 1 is ``mid < g <= high``, the
    reference's ``g > high`` set to ``mid``, then ``> mid``. With the
    defaults (0.12, 0.3, 0.78) on 8-bit pixels: channel 0 holds pixels
    0 .. 30, channel 1 pixels 77 .. 198. Frames missing from a short clip
    are zero in both channels (the reference's zero padding is of the
    decoded tensor, not of a black image, which would decode to channel
    0).

    Required Keys:

    - frames (list[PIL.Image.Image]): Greyscale (``'L'``) frames.
    - num_frames (int, optional): Clip length; defaults to the frames
      given.

    Added Keys:

    - img (np.ndarray): float32 ``num_frames x 2 x H x W`` in {0, 1}.

    Removed Keys:

    - frames

    Args:
        low (float): Upper bound (exclusive) of channel 0. Defaults to
            0.12.
        mid (float): Lower bound (exclusive) of channel 1. Defaults to
            0.3.
        high (float): Upper bound (inclusive) of channel 1. Defaults to
            0.78.
    """

    def __init__(self, low=0.12, mid=0.3, high=0.78):
        self.low = low
        self.mid = mid
        self.high = high

    def decode(self, frame):
        """``2 x H x W`` float32 channels of one greyscale frame."""
        if frame.mode != 'L':
            raise ValueError(f'HARDVSDecode: frames must be greyscale ("L") '
                             f'images, got mode {frame.mode!r}')
        g = np.asarray(frame, dtype=np.float32) / np.float32(255)
        neg = g < np.float32(self.low)
        pos = (g > np.float32(self.mid)) & (g <= np.float32(self.high))
        return np.stack([neg, pos]).astype(np.float32)

    def transform(self, results):
        frames = results.pop('frames')
        if not frames:
            raise ValueError('HARDVSDecode: the clip holds no frame')
        num_frames = check_count('HARDVSDecode', 'num_frames',
                                 results.get('num_frames', len(frames)))
        height, width = frames[0].height, frames[0].width
        img = np.zeros((num_frames, 2, height, width), dtype=np.float32)
        for t, frame in enumerate(frames[:num_frames]):
            img[t] = self.decode(frame)
        results['img'] = img
        results['img_shape'] = (height, width)
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(low={self.low}, mid={self.mid}, '
                f'high={self.high})')
