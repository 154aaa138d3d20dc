"""Static int8 quantisation of an exported spiking model with
onnxruntime's quantiser, exact on the spikes.

A neuron's output is ``k / norm`` with an integer ``k`` in ``0..D``: as
uint8 with scale ``1 / norm`` and zero point 0 it is represented exactly
(``D <= 127``). :func:`quantize_int8` runs onnxruntime's
``quantize_static`` in QDQ format (int8 weights per output channel, uint8
activations) with those parameters forced on every neuron output, so the
spikes lose nothing; the other activations (the image, membrane
potentials, the attention's ``k^T v`` sums) get scales calibrated on
sample inputs, and the weights are rounded to int8. The accuracy change
therefore comes from the weights and the non-spike activations only.
"""
import os.path as osp
import tempfile

import numpy as np
import onnx

from .onnx_graph import producers_of, scalar_constant

#: Ops that only move their first input's elements.
_MOVING_OPS = ('Reshape', 'Transpose', 'Flatten', 'Squeeze', 'Unsqueeze')

#: Ops whose inputs and weights are quantised.
QUANTIZED_OPS = ('Conv', 'MatMul', 'Gemm')


def spike_tensors(model):
    """The neuron outputs of an exported graph and their ``norm``.

    A neuron fires ``Div(Round(Clip(x, 0, D)), norm)`` (the graph after
    :func:`~sdt3_mm.deployment.remove_straight_through`; ``Floor`` for
    half-up rounding). The ``Div``'s output is ``k / norm``; where a
    ``Round`` is read without the division (onnxruntime's preparation
    folds it into a following ``Gemm``), its output is the count ``k``
    itself, norm 1. Reshaped or transposed spikes count too.

    Args:
        model (onnx.ModelProto): The graph.

    Returns:
        dict[str, float]: Tensor name to ``norm``.
    """
    graph = model.graph
    producers = producers_of(graph)
    readers = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    found = {}
    for node in graph.node:
        if node.op_type not in ('Round', 'Floor'):
            continue
        clip = producers.get(node.input[0])
        if node.op_type == 'Floor' and clip is not None:
            # half up: Floor(Clip(x) + 0.5)
            clip = producers.get(clip.input[0])
        if clip is None or clip.op_type != 'Clip' or scalar_constant(
                clip.input[1], graph, producers) != 0:
            continue
        for reader in readers.get(node.output[0], []):
            norm = None
            if reader.op_type == 'Div' and reader.input[0] == node.output[0]:
                norm = scalar_constant(reader.input[1], graph, producers)
            if norm is not None and norm > 0:
                found[reader.output[0]] = norm
            else:
                found[node.output[0]] = 1.
    # Spikes moved without arithmetic are still spikes (the attention
    # reshapes and transposes q, k and v before its products): the
    # quantiser places its pairs on the tensors the quantised ops read.
    pending = list(found)
    while pending:
        name = pending.pop()
        for reader in readers.get(name, []):
            if (reader.op_type in _MOVING_OPS and reader.input[0] == name
                    and reader.output[0] not in found):
                found[reader.output[0]] = found[name]
                pending.append(reader.output[0])
    return found


class _Batches:
    """onnxruntime ``CalibrationDataReader`` over numpy batches."""

    def __init__(self, input_name, batches):
        self.input_name = input_name
        self.batches = iter(batches)

    def get_next(self):
        batch = next(self.batches, None)
        return None if batch is None else {self.input_name: batch}


def quantize_int8(onnx_file, out_file, calibration):
    """Quantise ``onnx_file`` to int8 QDQ, exact on the spikes.

    Args:
        onnx_file (str): fp32 graph (as written by
            :func:`~sdt3_mm.deployment.export_onnx`).
        out_file (str): The quantised graph.
        calibration (list[np.ndarray]): Sample inputs (normalised images)
            for the scales of the activations that are not spikes.

    Returns:
        int: The number of spike tensors given exact parameters.
    """
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process
    if not calibration:
        raise ValueError('quantize_int8 needs at least one calibration batch')
    with tempfile.TemporaryDirectory() as tmp:
        # onnxruntime's own preparation (constant folding, shapes) first,
        # as its quantiser asks: the exporter shares equal biases through
        # Identity nodes, which the quantiser cannot read as weights.
        prepared = osp.join(tmp, 'prepared.onnx')
        # (ONNX's shape inference: the symbolic one gives up on the
        # segmentor's resize to the dynamic input size)
        quant_pre_process(onnx_file, prepared, skip_symbolic_shape=True)
        model = onnx.load(prepared)
        spikes = spike_tensors(model)
        overrides = {
            name: [{
                'quant_type': QuantType.QUInt8,
                'scale': np.array(1. / norm, dtype=np.float32),
                'zero_point': np.array(0, dtype=np.uint8)
            }]
            for name, norm in spikes.items()
        }
        input_name = model.graph.input[0].name
        quantize_static(
            prepared,
            out_file,
            _Batches(input_name, calibration),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(QUANTIZED_OPS),
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={'TensorQuantOverrides': overrides})
    return len(spikes)
