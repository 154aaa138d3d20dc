"""Mistakes in data and configs fail with a sentence naming the file, the
argument or the value, not with a trace from deep inside a library."""
import glob
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from PIL import Image

from sdt3_mm.datasets import CheckSegLabelRange
from sdt3_mm.models import ESpikeFormer, MetaSpikeFormer, SpikeFPN

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DET_CONFIG = osp.join(
    ROOT, 'configs/demo/mask-rcnn_e-spikeformer-t_spike-fpn_shapes.py')
SEG_CONFIG = osp.join(
    ROOT, 'configs/demo/fpn_e-spikeformer-t_spike-fpn_shapes-seg.py')
META = dict(family='meta', embed_dims=[8, 16, 32, 64])
SEG_CONFIGS = sorted(
    glob.glob(osp.join(ROOT, 'configs/sem_fpn/*.py')) +
    glob.glob(osp.join(ROOT, 'configs/upernet/*.py')) +
    glob.glob(osp.join(ROOT, 'configs/meta_spikeformer/*ade20k*.py')) +
    glob.glob(osp.join(ROOT, 'configs/demo/*seg*.py')))

# Detection: a COCO annotation file with no images or no annotations.


def _det_dataset(loader, data_root):
    from mmdet.registry import DATASETS
    dataset_cfg = Config.fromfile(DET_CONFIG)[loader].dataset
    dataset_cfg.update(
        data_root=data_root, num_train=3, num_val=2, image_size=64)
    with DefaultScope.overwrite_default_scope('mmdet'):
        return DATASETS.build(dataset_cfg)


@pytest.mark.parametrize('loader,emptied,message', [
    ('train_dataloader', 'images', r'lists no images \("images" is empty\)'),
    ('val_dataloader', 'images', r'lists no images \("images" is empty\)'),
    ('train_dataloader', 'annotations',
     r'lists 3 images but no annotations \("annotations" is empty\), and '
     r"filter_cfg=\{'filter_empty_gt': True\} drops every image"),
])
def test_empty_coco_annotation_file_is_named(loader, emptied, message,
                                             tmp_path):
    data_root = str(tmp_path / 'det')
    split = 'train' if loader == 'train_dataloader' else 'val'
    assert len(_det_dataset(loader, data_root)) > 0
    ann_file = osp.join(data_root, 'annotations', f'instances_{split}.json')
    with open(ann_file) as f:
        coco = json.load(f)
    coco[emptied] = []
    with open(ann_file, 'w') as f:
        json.dump(coco, f)
    # Before: "need at least one array to concatenate" from MMEngine.
    with pytest.raises(ValueError, match=message) as error:
        _det_dataset(loader, data_root)
    assert ann_file in str(error.value)


def test_validation_set_without_annotations_still_loads(tmp_path):
    """In test mode nothing is filtered: images without objects are
    evaluated, not refused."""
    data_root = str(tmp_path / 'det')
    _det_dataset('val_dataloader', data_root)
    ann_file = osp.join(data_root, 'annotations', 'instances_val.json')
    with open(ann_file) as f:
        coco = json.load(f)
    coco['annotations'] = []
    with open(ann_file, 'w') as f:
        json.dump(coco, f)
    assert len(_det_dataset('val_dataloader', data_root)) == 2


def _rewrite(ann_file, change):
    """Rewrite the COCO file ``ann_file`` with ``change(coco)`` applied."""
    with open(ann_file) as f:
        coco = json.load(f)
    change(coco)
    with open(ann_file, 'w') as f:
        json.dump(coco, f)


def _reverse_categories(coco):
    coco['categories'].reverse()


def _rename_star(coco):
    coco['categories'][4]['name'] = 'pentagram'


@pytest.mark.parametrize('loader', ['train_dataloader', 'val_dataloader'])
@pytest.mark.parametrize(
    'change,message', [
        (lambda coco: coco.update(categories=[]),
         r'lists no categories \("categories" is empty\), so none of its '
         r'annotations can be given a class'),
        (lambda coco: coco.pop('categories'),
         r'lists no categories \("categories" is missing\)'),
        (_rename_star, r"no category is named \['star'\] \(the dataset's "
         r"classes\); its categories are \[.*'pentagram'"),
        (_reverse_categories,
         r"lists the classes' categories in the order \['cross', 'star', "),
    ],
    ids=['empty', 'missing', 'renamed', 'reordered'])
def test_coco_categories_that_would_mislabel_are_refused(
        loader, change, message, tmp_path):
    """Before: empty categories were reported as empty annotations in
    training and evaluated as a set without objects; a class without its
    category, or the categories in another order, silently gave the
    annotations other labels."""
    data_root = str(tmp_path / 'det')
    split = 'train' if loader == 'train_dataloader' else 'val'
    _det_dataset(loader, data_root)
    ann_file = osp.join(data_root, 'annotations', f'instances_{split}.json')
    _rewrite(ann_file, change)
    with pytest.raises(ValueError, match=message) as error:
        _det_dataset(loader, data_root)
    assert f'annotation file {ann_file}' in str(error.value)


@pytest.mark.parametrize(
    'content,message', [
        ('', r'is empty \(0 bytes\); a COCO annotation file is a JSON object'),
        ('{"images": [',
         r'is not valid JSON: Expecting value: line 1 column 13'),
        ('[]', r'is not a JSON object with "images", "annotations" and '
         r'"categories"'),
    ],
    ids=['0-byte', 'truncated', 'array'])
def test_unreadable_coco_annotation_file_is_named(content, message, tmp_path):
    """Before: a bare JSONDecodeError (or pycocotools' assertion), naming
    no file."""
    data_root = str(tmp_path / 'det')
    _det_dataset('train_dataloader', data_root)
    ann_file = osp.join(data_root, 'annotations', 'instances_train.json')
    with open(ann_file, 'w') as f:
        f.write(content)
    with pytest.raises(ValueError, match=message) as error:
        _det_dataset('train_dataloader', data_root)
    assert f'ShapesDetection: annotation file {ann_file}' in str(error.value)


def test_coco_annotations_of_unknown_categories_are_not_called_empty(tmp_path):
    data_root = str(tmp_path / 'det')
    _det_dataset('train_dataloader', data_root)
    ann_file = osp.join(data_root, 'annotations', 'instances_train.json')

    def unknown_category(coco):
        for annotation in coco['annotations']:
            annotation['category_id'] = 99

    _rewrite(ann_file, unknown_category)
    with pytest.raises(
            ValueError,
            match=r'lists 3 images and \d+ annotations, none of them usable '
            r'\(.*category_id that is not a category of the classes\)'):
        _det_dataset('train_dataloader', data_root)


COCO_CONFIGS = sorted(
    c
    for c in glob.glob(osp.join(ROOT, 'configs/**/*_coco.py'), recursive=True))


def test_coco_configs_are_found():
    assert len(COCO_CONFIGS) == 6


@pytest.mark.parametrize('config', COCO_CONFIGS, ids=osp.basename)
def test_coco_configs_name_an_empty_annotation_file(config, tmp_path):
    """The COCO configs read their data with sdt3_mm.CheckedCocoDataset
    (before: MMDetection's CocoDataset, a bare JSONDecodeError)."""
    from mmdet.registry import DATASETS
    cfg = Config.fromfile(config)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset_cfg = cfg[loader].dataset
        dataset_cfg.data_root = str(tmp_path)
        ann_file = osp.join(str(tmp_path), dataset_cfg.ann_file)
        os.makedirs(osp.dirname(ann_file), exist_ok=True)
        open(ann_file, 'w').close()
        with DefaultScope.overwrite_default_scope('mmdet'), pytest.raises(
                ValueError,
                match=f'CheckedCocoDataset: annotation file {ann_file} is '
                r'empty \(0 bytes\)'):
            DATASETS.build(dataset_cfg)


# Backbones: input batch and construction arguments.


@pytest.mark.parametrize('build', [
    lambda: ESpikeFormer('t', out_indices=(1, 2, 3, 4)),
    lambda: MetaSpikeFormer(META, T=2),
])
def test_empty_batch_is_named(build):
    model = build().eval()
    # Before: "cannot reshape tensor of 0 elements" inside the attention.
    with pytest.raises(
            ValueError,
            match=r'the input batch is empty \(shape \(0, 3, 32, 32\)\)'):
        model(torch.zeros(0, 3, 32, 32))


@pytest.mark.parametrize('cls,arch', [(ESpikeFormer, 't'),
                                      (MetaSpikeFormer, META)])
@pytest.mark.parametrize('out_indices,message', [
    ((1, 1, 2), r'out_indices \[1, 1, 2\] name tap\(s\) \[1\] more than '
     'once'),
    ((4, -1), r'out_indices \[4, -1\] name tap\(s\) \[4\] more than once '
     r'\(negative indices count back from tap 4\)'),
    ((), r'out_indices must name at least one tap, got \[\]'),
])
def test_duplicate_or_empty_out_indices_are_refused(cls, arch, out_indices,
                                                    message):
    # Before: duplicates merged silently; () failed on the forward with
    # "max() arg is an empty sequence".
    with pytest.raises(ValueError, match=f'^{cls.__name__}: {message}'):
        cls(arch=arch, out_indices=out_indices)


@pytest.mark.parametrize('cls,arch,message', [
    (ESpikeFormer, dict(
        family='base', embed_dims=[8, 16, 32, 64], num_heads=0),
     'ESpikeFormer: arch num_heads must be a positive integer, got 0'),
    (MetaSpikeFormer, dict(META, num_heads=0),
     'MetaSpikeFormer: arch num_heads must be a positive integer, got 0'),
    (ESpikeFormer,
     dict(family='large', embed_dims=[8, 16, 32], depth=-1, rep_conv=False),
     r'ESpikeFormer: arch depth \(blocks of the large family\'s stage 3\) '
     'must be a positive integer, got -1'),
    (ESpikeFormer,
     dict(family='large', embed_dims=[8, 16, 32], depth=0,
          rep_conv=False), 'arch depth .* got 0'),
    (ESpikeFormer, dict(family='base', embed_dims=[0, 16, 32, 64]),
     r'arch embed_dims must be positive integers, .* got \[0, 16, 32, 64\]'),
])
def test_bad_arch_values_are_named(cls, arch, message):
    # Before: ZeroDivisionError (num_heads), silently built (depth), "groups
    # must be a positive integer" (embed_dims).
    with pytest.raises(ValueError, match=message):
        cls(arch=arch)


@pytest.mark.parametrize('cls,arch', [(ESpikeFormer, 't'),
                                      (MetaSpikeFormer, META)])
@pytest.mark.parametrize('rate', [1.5, 1.0, -0.1, '0.1'])
def test_drop_path_rate_outside_zero_one_is_refused(cls, arch, rate):
    with pytest.raises(
            ValueError,
            match=rf'^{cls.__name__}: drop_path_rate must be in \[0, 1\), '
            rf'got {rate!r}$'):
        cls(arch=arch, drop_path_rate=rate)


def test_valid_drop_path_rates_still_build():
    for rate in (0, 0., 0.1, 0.99):
        ESpikeFormer('t', drop_path_rate=rate)


# SpikeFPN: the neck's own asserts.


def test_spike_fpn_names_a_missing_input():
    backbone = ESpikeFormer('t', out_indices=(1, 2, 3)).eval()
    neck = SpikeFPN([24, 48, 96, 128], 16, num_outs=4).eval()
    # Before: a bare AssertionError in MMDetection's FPN.forward.
    with pytest.raises(
            ValueError,
            match=r'SpikeFPN: got 3 inputs, but in_channels '
            r'\[24, 48, 96, 128\] has 4 entries; the backbone\'s '
            'out_indices'):
        with torch.no_grad():
            neck(backbone(torch.zeros(1, 3, 32, 32)))


@pytest.mark.parametrize('kwargs,message', [
    (dict(num_outs=2), 'num_outs=2 is fewer than the 3 inputs'),
    (dict(num_outs=3, start_level=3), 'start_level must be in 0..2'),
    (dict(num_outs=3, end_level=1), 'with end_level=1, num_outs must be 2'),
    (dict(num_outs=3, end_level=5), 'end_level must be -1 or in 0..2'),
])
def test_spike_fpn_names_bad_levels(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SpikeFPN([8, 16, 32], 16, **kwargs)


# Segmentation: a label outside the class range.


def _seg_dataset(loader, data_root):
    from mmseg.registry import DATASETS
    dataset_cfg = Config.fromfile(SEG_CONFIG)[loader].dataset
    dataset_cfg.update(
        data_root=data_root, num_train=2, num_val=2, image_size=32)
    with DefaultScope.overwrite_default_scope('mmseg'):
        return DATASETS.build(dataset_cfg)


@pytest.mark.parametrize('loader,folder', [('train_dataloader', 'training'),
                                           ('val_dataloader', 'validation')])
def test_segmentation_label_out_of_range_names_the_file(
        loader, folder, tmp_path):
    data_root = str(tmp_path / 'seg')
    dataset = _seg_dataset(loader, data_root)
    dataset[1]
    label_file = osp.join(data_root, 'annotations', folder, '000001.png')
    label = np.asarray(Image.open(label_file)).copy()
    label[:3, :3] = 9
    label[5, 5] = 200
    label[6, 6] = 255  # the ignore index is valid
    Image.fromarray(label).save(label_file)
    # Before: "IndexError: Target 9 is out of bounds." in training's loss,
    # and in validation the pixels silently left out of the metric.
    with pytest.raises(
            ValueError,
            match=r'label values 9, 200 at 10 pixels are outside the valid '
            r'range: classes 0\.\.6 \(num_classes=7\) and the ignore index '
            r'255') as error:
        _seg_dataset(loader, data_root)[1]
    assert str(error.value).startswith(label_file)
    assert _seg_dataset(loader, data_root)[0] is not None


def test_label_check_reports_file_values_under_reduce_zero_label():
    check = CheckSegLabelRange(num_classes=150)
    seg = np.full((4, 4), 3, np.uint8)
    seg[0, 0] = 255
    assert check(dict(gt_seg_map=seg.copy())) is not None
    seg[1, 1] = 150
    with pytest.raises(
            ValueError,
            match=r'^a/b\.png: label values 150 \(file values 151: '
            r'reduce_zero_label=True subtracts 1 and makes the file\'s 0 the '
            r'ignore index\) at 1 pixels are outside the valid range: classes '
            r'0\.\.149'):
        check(
            dict(
                gt_seg_map=seg, seg_map_path='a/b.png',
                reduce_zero_label=True))


def test_label_check_passes_images_without_labels():
    """MMSegInferencer drops LoadAnnotations from the test pipeline."""
    results = dict(img=np.zeros((4, 4, 3), np.uint8), img_path='a.jpg')
    assert CheckSegLabelRange(num_classes=150)(results) is results


@pytest.mark.parametrize('num_classes', [0, -1, 1.5, True])
def test_label_check_needs_a_class_count(num_classes):
    with pytest.raises(ValueError, match='num_classes must be a positive'):
        CheckSegLabelRange(num_classes=num_classes)


def test_label_check_takes_numpy_integers():
    """A class count computed with NumPy is a count like any other."""
    check = CheckSegLabelRange(
        num_classes=np.int64(4), ignore_index=np.uint8(255))
    assert (check.num_classes, check.ignore_index) == (4, 255)
    seg = np.array([[0, 3], [255, 4]], np.uint8)
    with pytest.raises(ValueError, match='label values 4'):
        check(dict(gt_seg_map=seg, seg_map_path='a.png'))


@pytest.mark.parametrize('config', SEG_CONFIGS, ids=osp.basename)
def test_segmentation_configs_check_labels_after_loading(config):
    cfg = Config.fromfile(config)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        types = [t['type'] for t in cfg[loader].dataset.pipeline]
        at = types.index('LoadAnnotations')
        check = cfg[loader].dataset.pipeline[at + 1]
        assert check['type'] == 'sdt3_mm.CheckSegLabelRange', (loader, types)
        assert check['num_classes'] == cfg.model.decode_head.num_classes


@pytest.mark.parametrize('config', SEG_CONFIGS, ids=osp.basename)
def test_segmentation_tta_pipelines_check_labels_after_loading(config):
    """``test.py --tta`` checks labels too: the stage after the one that
    loads the annotations in TestTimeAug is the label check."""
    cfg = Config.fromfile(config)
    assert 'tta_pipeline' in cfg, 'no TTA settings'
    tta = [t for t in cfg.tta_pipeline if t['type'] == 'TestTimeAug'][0]
    stages = [[t['type'] for t in stage] for stage in tta['transforms']]
    at = stages.index(['LoadAnnotations'])
    check = tta['transforms'][at + 1]
    assert [t['type'] for t in check] == ['sdt3_mm.CheckSegLabelRange']
    assert check[0]['num_classes'] == cfg.model.decode_head.num_classes
