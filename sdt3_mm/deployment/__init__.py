from .onnx_export import (ClassifierExport, DetectorFeatureExport,
                          SegmentorExport, build_model, config_batches,
                          config_scope, export_module, export_onnx,
                          max_abs_difference, onnx_inference, preprocess_image,
                          verify)

__all__ = [
    'ClassifierExport', 'DetectorFeatureExport', 'SegmentorExport',
    'build_model', 'config_batches', 'config_scope', 'export_module',
    'export_onnx', 'max_abs_difference', 'onnx_inference', 'preprocess_image',
    'verify'
]
