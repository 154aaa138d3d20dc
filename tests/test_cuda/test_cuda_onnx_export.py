"""ONNX export of a model on CUDA (the exporter traces it there), the file
checked and, where onnxruntime is installed, run on the CPU against the
model."""
import pytest
import torch
from cuda_tier import CUDA, demo_classifier, ieee_fp32

from sdt3_mm.deployment import (export_module, export_onnx, ort_session,
                                verification_verdict, verify)

pytestmark = pytest.mark.cuda


def _firing_classifier():
    """The demo E-SpikeFormer classifier in evaluation mode, its BatchNorm
    statistics moved off their defaults (seeded) so that the neurons fire
    in patterns of their own."""
    model = demo_classifier('e-spikeformer').eval()
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            shape = module.running_mean.shape
            module.running_mean.copy_(
                torch.rand(shape, generator=generator) - 0.5)
            module.running_var.copy_(
                torch.rand(shape, generator=generator) * 1.5 + 0.5)
    return model


def test_onnx_export_of_a_cuda_model(tmp_path):
    onnx = pytest.importorskip('onnx', reason='onnx is not installed')
    module, names = export_module(_firing_classifier(), 'mmpretrain')
    module = module.to(CUDA)
    example = torch.randn(
        2, 3, 64, 64, generator=torch.Generator().manual_seed(0)).to(CUDA)
    path = str(tmp_path / 'classifier.onnx')
    with ieee_fp32(), torch.no_grad():
        names = export_onnx(module, example, path, names)
        scores = module(example).cpu()
    assert names == ['scores']
    onnx.checker.check_model(path, full_check=True)
    pytest.importorskip(
        'onnxruntime',
        reason='onnxruntime is not installed: the file was exported and '
        'checked, not run')
    session = ort_session(path)
    got, = session.run(None, {'input': example.cpu().numpy()})
    assert (torch.from_numpy(got) - scores).abs().max() <= 1e-4
    # Every neuron's spike counts in the file against the model's (on the
    # CPU, where verify runs it), at this size and a second one.
    results = verify(module.cpu(), path, [example.cpu()])
    passed, why = verification_verdict(results)
    assert passed, why
