"""Data transforms of the ``sdt3_mm`` scope."""
import numpy as np
from mmcv.transforms import BaseTransform

from sdt3_mm.registry import TRANSFORMS
from sdt3_mm.utils.arguments import is_integer


@TRANSFORMS.register_module()
class CheckSegLabelRange(BaseTransform):
    """Refuse a segmentation label map holding a value that is no class.

    Placed right after ``LoadAnnotations``. Without it, a label of
    ``num_classes`` or more fails in training deep inside the loss
    (``IndexError: Target 9 is out of bounds``, naming no file), and in
    validation MMSegmentation's ``IoUMetric`` silently leaves such pixels
    out of the metric. Here the error names the label file, the offending
    values and the valid range.

    The check reads the map as ``LoadAnnotations`` left it, so with
    ``reduce_zero_label`` the values are the file's minus one (the file's
    0 becoming the ignore index); the message then gives the file's values
    as well.

    Results without a label map pass unchanged: at inference nothing is
    loaded to check (MMSegmentation's ``MMSegInferencer`` takes the test
    pipeline without its ``LoadAnnotations``).

    Required Keys:

    - gt_seg_map (optional: nothing to check without it)
    - seg_map_path (optional, named in the message)
    - reduce_zero_label (optional, named in the message)

    Args:
        num_classes (int): Classes of the model (its decode head's
            ``num_classes``); valid labels are ``0..num_classes - 1``.
            At least 1.
        ignore_index (int): The one other valid value, pixels left out of
            the loss and the metric. Defaults to 255, as MMSegmentation's
            losses and metric.
    """

    def __init__(self, num_classes, ignore_index=255):
        if not is_integer(num_classes) or num_classes < 1:
            raise ValueError(f'CheckSegLabelRange: num_classes must be a '
                             f'positive integer, got {num_classes!r}')
        if not is_integer(ignore_index):
            raise ValueError(f'CheckSegLabelRange: ignore_index must be an '
                             f'integer, got {ignore_index!r}')
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)

    def transform(self, results):
        if results.get('gt_seg_map') is None:
            return results
        seg = np.asarray(results['gt_seg_map'])
        bad = ((seg < 0) | (seg >= self.num_classes)) & (
            seg != self.ignore_index)
        if not bad.any():
            return results
        values = np.unique(seg[bad]).astype(np.int64)
        shown = ', '.join(str(v) for v in values[:10])
        if len(values) > 10:
            shown += f', ... ({len(values)} values)'
        note = ''
        if results.get('reduce_zero_label'):
            # LoadAnnotations subtracted 1; the file holds one more.
            shown_file = ', '.join(str(v + 1) for v in values[:10])
            note = (f' (file values {shown_file}: reduce_zero_label=True '
                    f'subtracts 1 and makes the file\'s 0 the ignore index)')
        path = results.get('seg_map_path', '<label map without a path>')
        raise ValueError(
            f'{path}: label values {shown}{note} at {int(bad.sum())} pixels '
            f'are outside the valid range: classes 0..{self.num_classes - 1} '
            f'(num_classes={self.num_classes}) and the ignore index '
            f'{self.ignore_index}; fix the label file, or num_classes in the '
            f'config (its CheckSegLabelRange and decode head)')

    def __repr__(self):
        return (f'{type(self).__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index})')
