from .onnx_export import (Agreement, ClassifierExport, DetectorFeatureExport,
                          SegmentorExport, build_model, config_batches,
                          config_scope, describe_prediction, export_module,
                          export_onnx, load_config, onnx_inference,
                          ort_session, preprocess_image, verification_verdict,
                          verify)
from .onnx_graph import remove_straight_through
from .onnx_quantization import quantize_int8, spike_tensors

__all__ = [
    'ClassifierExport', 'DetectorFeatureExport', 'SegmentorExport',
    'build_model', 'config_batches', 'config_scope', 'describe_prediction',
    'export_module', 'export_onnx', 'load_config', 'onnx_inference',
    'ort_session', 'preprocess_image', 'quantize_int8',
    'remove_straight_through', 'spike_tensors', 'verification_verdict',
    'verify', 'Agreement'
]
