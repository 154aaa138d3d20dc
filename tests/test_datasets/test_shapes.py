import filecmp
import os
import os.path as osp

import numpy as np
import pytest

from sdt3_mm.datasets.demo import (SEGMENTATION_COLORS, SHAPE_CLASSES,
                                   ShapesClassification, ShapesDetection,
                                   ShapesSegmentation, classification_scene,
                                   detection_scene, render_scene,
                                   write_classification_set,
                                   write_detection_set, write_segmentation_set)


def test_scenes_are_deterministic_and_balanced():
    first = [classification_scene(0, 'train', i, 32) for i in range(12)]
    again = [classification_scene(0, 'train', i, 32) for i in range(12)]
    for (a, la), (b, lb) in zip(first, again):
        assert la == lb and np.array_equal(a, b)
    assert [label for _, label in first] == list(range(6)) * 2
    other = classification_scene(0, 'val', 0, 32)[0]
    assert not np.array_equal(first[0][0], other)


def test_render_scene_masks_follow_occlusion():
    rng = np.random.default_rng(0)
    image, objects = render_scene(rng, 48, [(0, 20, 20, 12, 0.0),
                                            (1, 28, 28, 12, 0.0)])
    assert image.shape == (48, 48, 3) and image.dtype == np.uint8
    first, second = objects
    assert second['mask'].sum() > 0
    assert not (first['mask'] & second['mask']).any()
    assert [o['label'] for o in objects] == [0, 1]


def test_write_classification_set_layout_and_reuse(tmp_path):
    root = str(tmp_path / 'shapes')
    write_classification_set(root, num_train=12, num_val=6, size=32)
    assert sorted(os.listdir(osp.join(root, 'train'))) == \
        sorted(SHAPE_CLASSES)
    with open(osp.join(root, 'meta', 'val.txt')) as f:
        lines = f.read().split('\n')
    assert lines[0] == 'circle/000000.png 0' and len(lines) == 7
    again = str(tmp_path / 'again')
    write_classification_set(again, num_train=12, num_val=6, size=32)
    assert filecmp.cmp(
        osp.join(root, 'train', 'star', '000004.png'),
        osp.join(again, 'train', 'star', '000004.png'),
        shallow=False)
    # A second call with the same settings reuses the set ...
    write_classification_set(root, num_train=12, num_val=6, size=32)
    # ... and other settings are refused rather than mixed in.
    with pytest.raises(ValueError, match='delete it or choose another'):
        write_classification_set(root, num_train=24, num_val=6, size=32)


def test_foreign_folder_is_not_overwritten(tmp_path):
    (tmp_path / 'mine.txt').write_text('data')
    with pytest.raises(ValueError, match='is not empty'):
        write_classification_set(str(tmp_path), num_train=6, num_val=6)


def test_dataset_reads_the_generated_split(tmp_path):
    dataset = ShapesClassification(
        str(tmp_path / 'shapes'),
        split='val',
        num_train=12,
        num_val=6,
        image_size=32)
    assert len(dataset) == 6
    assert dataset.metainfo['classes'] == SHAPE_CLASSES
    assert dataset.get_data_info(3)['gt_label'] == 3
    with pytest.raises(ValueError, match='split must be'):
        ShapesClassification(str(tmp_path / 'shapes'), split='test')


def test_detection_scenes_hold_separate_shapes_inside_the_image():
    for index in range(20):
        image, objects = detection_scene(0, 'train', index, 96)
        assert image.shape == (96, 96, 3)
        assert 1 <= len(objects) <= 4
        for i, obj in enumerate(objects):
            assert ((obj['polygon'] >= 0) & (obj['polygon'] <= 96)).all()
            # No shape covers another: each mask is the whole polygon.
            assert obj['mask'].sum() > 0
            for other in objects[i + 1:]:
                assert not (obj['mask'] & other['mask']).any()


def test_write_detection_set_is_valid_coco(tmp_path):
    from pycocotools.coco import COCO
    root = str(tmp_path / 'det')
    write_detection_set(root, num_train=6, num_val=4, size=64)
    coco = COCO(osp.join(root, 'annotations', 'instances_val.json'))
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == \
        list(SHAPE_CLASSES)
    assert sorted(coco.getImgIds()) == [0, 1, 2, 3]
    for ann in coco.loadAnns(coco.getAnnIds()):
        mask = coco.annToMask(ann)
        # The polygon rasterises to the drawn object, give or take its rim.
        assert abs(int(mask.sum()) - ann['area']) <= 0.2 * ann['area'] + 8
        ys, xs = np.nonzero(mask)
        x, y, w, h = ann['bbox']
        assert x - 1 <= xs.min() and xs.max() <= x + w + 1
        assert y - 1 <= ys.min() and ys.max() <= y + h + 1
    assert osp.isfile(osp.join(root, 'val', '000003.png'))


def test_detection_dataset_reads_boxes_masks_and_labels(tmp_path):
    dataset = ShapesDetection(
        str(tmp_path / 'det'),
        split='train',
        num_train=6,
        num_val=2,
        image_size=64)
    assert len(dataset) == 6
    assert dataset.metainfo['classes'] == SHAPE_CLASSES
    info = dataset.get_data_info(0)
    assert info['height'] == info['width'] == 64
    instances = info['instances']
    assert instances and all(
        0 <= inst['bbox_label'] < len(SHAPE_CLASSES) and inst['mask']
        for inst in instances)
    with pytest.raises(ValueError, match='split must be'):
        ShapesDetection(str(tmp_path / 'det'), split='test')


def test_write_segmentation_set_labels_the_detection_scenes(tmp_path):
    from PIL import Image

    root = str(tmp_path / 'seg')
    write_segmentation_set(root, num_train=4, num_val=3, size=48)
    for split, folder in (('train', 'training'), ('val', 'validation')):
        for index in range(3):
            name = f'{index:06d}.png'
            label = np.asarray(
                Image.open(osp.join(root, 'annotations', folder, name)))
            image = np.asarray(
                Image.open(osp.join(root, 'images', folder, name)))
            scene, objects = detection_scene(
                0,
                split,
                index,
                48,
                background='solid',
                class_colors=SEGMENTATION_COLORS)
            assert np.array_equal(image, scene)
            expected = np.zeros((48, 48), np.uint8)
            for obj in objects:
                expected[obj['mask']] = obj['label'] + 1
            assert label.dtype == np.uint8
            assert np.array_equal(label, expected)


def test_segmentation_dataset_reads_image_and_label_pairs(tmp_path):
    dataset = ShapesSegmentation(
        str(tmp_path / 'seg'),
        split='val',
        num_train=4,
        num_val=3,
        image_size=48)
    assert len(dataset) == 3
    assert dataset.metainfo['classes'] == ('background', ) + SHAPE_CLASSES
    info = dataset.get_data_info(1)
    assert info['img_path'].endswith('images/validation/000001.png')
    assert info['seg_map_path'].endswith('annotations/validation/000001.png')
    assert not info['reduce_zero_label']
    with pytest.raises(ValueError, match='split must be'):
        ShapesSegmentation(str(tmp_path / 'seg'), split='test')


def test_class_colors_paint_each_class_and_keep_the_background_apart():
    rng = np.random.default_rng(0)
    # A circle (class 0, solid texture) and a cross (class 5).
    image, objects = render_scene(
        rng,
        48, [(0, 14, 14, 10, 0.0), (5, 34, 34, 10, 0.0)],
        background='solid',
        class_colors=SEGMENTATION_COLORS)
    circle = image[objects[0]['mask']]
    assert (circle == SEGMENTATION_COLORS[0]).all()
    background = image[0, -1].astype(int)
    for color in SEGMENTATION_COLORS:
        assert np.abs(background - color).sum() > 180


def test_make_demo_data_writes_the_coco_and_ade20k_layouts(tmp_path):
    import subprocess
    import sys
    tool = osp.join(
        osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools',
        'misc', 'make_demo_data.py')
    for layout, probe in (('coco', 'annotations/instances_val.json'),
                          ('ade20k', 'annotations/validation/000001.png')):
        out = str(tmp_path / layout)
        subprocess.run([
            sys.executable, tool, layout, out, '--num-train', '3', '--num-val',
            '2', '--size', '32'
        ],
                       check=True)
        assert osp.isfile(osp.join(out, probe))
