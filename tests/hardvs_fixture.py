"""A tiny HARDVS set in the official layout, written for the tests."""
import os
import os.path as osp

import numpy as np
from PIL import Image

# Pixel values straddling the reference's thresholds (g = pixel / 255):
# 0.12 lies between 30 and 31, 0.3 between 76 and 77, 0.78 between 198
# and 199.
EDGE_PIXELS = [0, 30, 31, 76, 77, 128, 198, 199, 255]
CHANNEL0 = {0, 30}  # g < 0.12
CHANNEL1 = {77, 128, 198}  # 0.3 < g <= 0.78


def frame_pixels(sample, index, height=30, width=40):
    """A frame of known pixels: bands of the edge values, moved along with
    the frame index, plus a left-right ramp (so that a flip shows)."""
    rows = np.arange(height)[:, None]
    cols = np.arange(width)[None, :]
    values = np.array(EDGE_PIXELS, dtype=np.uint8)
    bands = values[(rows // 3 + cols // 5 + index + sample) % len(values)]
    bands[:, :4] = (np.arange(4) * 60 + index * 3).astype(np.uint8)
    return bands.astype(np.uint8)


def write_hardvs(root, samples):
    """Write the official layout: ``samples`` maps (split, path) to
    (label, [frames per sample folder]). Frames are named so that listing
    order and name order differ."""
    lines = {}
    for sample, ((split, path), (label, clips)) in enumerate(samples.items()):
        lines.setdefault(split, []).append(f'{path} 42 {label}\n')
        for c, num in enumerate(clips):
            clip = osp.join(root, 'rawframe', path, f'clip{c}')
            os.makedirs(clip)
            for i in reversed(range(num)):
                Image.fromarray(frame_pixels(sample, i)).save(
                    osp.join(clip, f'{i:04d}.png'))
    os.makedirs(osp.join(root, 'list'))
    for split, split_lines in lines.items():
        with open(osp.join(root, 'list', f'{split}_label.txt'), 'w') as f:
            f.writelines(split_lines)
    return root


SAMPLES = {
    ('train', 'action_001/dvSave-a'): (0, [12, 5]),
    ('train', 'action_300/dvSave-b'): (299, [9]),
    ('test', 'action_002/dvSave-c'): (1, [11]),
}
