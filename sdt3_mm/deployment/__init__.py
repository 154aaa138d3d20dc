from .onnx_export import (Agreement, ClassifierExport, DetectorFeatureExport,
                          SegmentorExport, build_model, config_batches,
                          config_scope, describe_prediction, example_input,
                          export_module, export_onnx, input_axes,
                          input_channels, load_config, onnx_inference,
                          ort_session, preprocess_image, resize_batch,
                          takes_clips, verification_verdict, verify)
from .onnx_graph import remove_straight_through
from .onnx_quantization import quantize_int8, spike_tensors

__all__ = [
    'ClassifierExport', 'DetectorFeatureExport', 'SegmentorExport',
    'build_model', 'config_batches', 'config_scope', 'describe_prediction',
    'example_input', 'export_module', 'export_onnx', 'input_axes',
    'input_channels', 'load_config', 'onnx_inference', 'ort_session',
    'preprocess_image', 'quantize_int8', 'resize_batch', 'takes_clips',
    'remove_straight_through', 'spike_tensors', 'verification_verdict',
    'verify', 'Agreement'
]
