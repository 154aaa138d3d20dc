# COCO instance segmentation with the DETR / Sparse R-CNN multi-scale crop
# augmentation the E-SpikeFormer detectors were trained with: random flip,
# then either a multi-scale resize (shorter side 480..800) or a resize to
# 400..600, a random 384..600 crop and the multi-scale resize.
_base_ = 'mmdet::_base_/datasets/coco_instance.py'

multi_scale = [(480, 1333), (512, 1333), (544, 1333), (576, 1333), (608, 1333),
               (640, 1333), (672, 1333), (704, 1333), (736, 1333), (768, 1333),
               (800, 1333)]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[[
            dict(
                type='RandomChoiceResize', scales=multi_scale, keep_ratio=True)
        ],
                    [
                        dict(
                            type='RandomChoiceResize',
                            scales=[(400, 1333), (500, 1333), (600, 1333)],
                            keep_ratio=True),
                        dict(
                            type='RandomCrop',
                            crop_type='absolute_range',
                            crop_size=(384, 600),
                            allow_negative_crop=True),
                        dict(
                            type='RandomChoiceResize',
                            scales=multi_scale,
                            keep_ratio=True)
                    ]]),
    dict(type='PackDetInputs')
]
# Four images per GPU, as the reference. MMDetection's CocoDataset with its
# annotation file checked: an empty or broken file, or categories that would
# label the annotations wrongly (none, a class missing, another order), are
# refused with the file named rather than read as a set without objects.
train_dataloader = dict(
    batch_size=4,
    dataset=dict(type='sdt3_mm.CheckedCocoDataset', pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(type='sdt3_mm.CheckedCocoDataset'))
test_dataloader = val_dataloader
