"""MMDetection's COCO dataset with its annotation file checked."""
import json
import os.path as osp

from mmdet.datasets import CocoDataset
from mmdet.datasets.api_wrappers import COCO

from sdt3_mm.registry import DATASETS


@DATASETS.register_module()
class CheckedCocoDataset(CocoDataset):
    """:class:`mmdet.datasets.CocoDataset` that refuses an annotation file
    it would misread, with a message naming the file and what is wrong.

    MMDetection reads the file with ``json.load``, so an empty (0-byte) or
    truncated file fails with a bare ``JSONDecodeError`` that names no
    file. It then gives each annotation the label of its category among
    those named like the dataset's ``classes``, counted in the file's
    order: a file without categories has all its annotations dropped
    without a word (training then stops at "no annotations", evaluation
    sees no objects), and one without a class's category, or with the
    categories in another order than ``classes``, gives annotations the
    labels of other classes. Refused here:

    - an empty file, or one that is not a JSON object;
    - no ``categories`` (empty or missing);
    - a class of ``metainfo['classes']`` that no category is named, or
      that several are;
    - the classes' categories in another order than ``classes``.

    With ``filter_cfg`` dropping every image (or no images in the file),
    it says which of ``images`` and ``annotations`` is empty rather than
    MMEngine's ``need at least one array to concatenate``.

    Args:
        **kwargs: Arguments of :class:`mmdet.datasets.CocoDataset`.

    Raises:
        ValueError: For the files above, naming the annotation file.
    """

    def COCOAPI(self, local_path):  # noqa: N802 (CocoDataset calls it)
        """Read ``local_path`` (the annotation file, fetched by
        ``load_data_list``) with MMDetection's COCO API and check it.

        ``CocoDataset.load_data_list`` calls ``self.COCOAPI(path)``, a
        class attribute there; as a method here it knows the dataset's
        annotation file and classes.

        Returns:
            mmdet.datasets.api_wrappers.COCO: The read file.

        Raises:
            ValueError: See the class.
        """
        prefix = f'{type(self).__name__}: annotation file {self.ann_file}'
        if osp.getsize(local_path) == 0:
            raise ValueError(
                f'{prefix} is empty (0 bytes); a COCO annotation file is a '
                f'JSON object with "images", "annotations" and "categories"')
        try:
            coco = COCO(local_path)
        except json.JSONDecodeError as error:
            raise ValueError(f'{prefix} is not valid JSON: {error}') from error
        except AssertionError as error:  # pycocotools: not a JSON object
            raise ValueError(
                f'{prefix} is not a JSON object with "images", '
                f'"annotations" and "categories" ({error})') from error
        self._check_categories(coco.dataset.get('categories'), prefix)
        # for filter_data's message: the file's annotations, usable or not
        self._num_file_annotations = len(coco.anns)
        return coco

    def _check_categories(self, categories, prefix):
        """Refuse ``categories`` that would not give the annotations the
        labels of ``metainfo['classes']`` (see the class)."""
        if not categories:
            state = 'is empty' if categories is not None else 'is missing'
            raise ValueError(
                f'{prefix} lists no categories ("categories" {state}), so '
                f'none of its annotations can be given a class')
        names = [category.get('name') for category in categories]
        classes = list(self.metainfo['classes'])
        missing = [c for c in classes if c not in names]
        if missing:
            raise ValueError(
                f'{prefix}: no category is named {missing} (the dataset\'s '
                f'classes); its categories are {names}')
        repeated = sorted({c for c in classes if names.count(c) > 1})
        if repeated:
            raise ValueError(
                f'{prefix}: several categories are named {repeated}')
        in_file_order = [name for name in names if name in classes]
        if in_file_order != classes:
            raise ValueError(
                f'{prefix} lists the classes\' categories in the order '
                f'{in_file_order}, not in the dataset\'s order {classes}; '
                f'MMDetection labels them in the file\'s order')

    def filter_data(self):
        """Filter as :class:`CocoDataset`, refusing an empty result.

        With no image left, MMEngine's serialisation would fail with
        ``need at least one array to concatenate``, naming neither the
        annotation file nor what it lacks.
        """
        data_list = super().filter_data()
        if data_list:
            return data_list
        prefix = f'{type(self).__name__}: annotation file {self.ann_file}'
        if not self.data_list:
            raise ValueError(f'{prefix} lists no images ("images" is empty)')
        num_objects = sum(len(info['instances']) for info in self.data_list)
        in_file = getattr(self, '_num_file_annotations', 0)
        if in_file == 0:
            found = (f'{len(self.data_list)} images but no annotations '
                     f'("annotations" is empty)')
        elif num_objects == 0:
            found = (f'{len(self.data_list)} images and {in_file} '
                     f'annotations, none of them usable (each is marked '
                     f'ignore, has an empty box or a category_id that is '
                     f'not a category of the classes)')
        else:
            found = f'{len(self.data_list)} images, {num_objects} annotations'
        raise ValueError(
            f'{prefix} lists {found}, and filter_cfg={self.filter_cfg} drops '
            f'every image (filter_empty_gt drops the images without an '
            f'annotation, min_size the smaller ones): no image is left')
