from .onnx_export import (ClassifierExport, DetectorFeatureExport,
                          SegmentorExport, build_model, config_batches,
                          config_scope, describe_prediction, export_module,
                          export_onnx, max_abs_difference, onnx_inference,
                          ort_session, preprocess_image, verify)
from .onnx_graph import remove_straight_through
from .onnx_quantization import quantize_int8, spike_tensors

__all__ = [
    'ClassifierExport', 'DetectorFeatureExport', 'SegmentorExport',
    'build_model', 'config_batches', 'config_scope', 'describe_prediction',
    'export_module', 'export_onnx', 'max_abs_difference', 'onnx_inference',
    'ort_session', 'preprocess_image', 'quantize_int8',
    'remove_straight_through', 'spike_tensors', 'verify'
]
