"""The reference cases of both families on CUDA: the original code's
outputs reproduced there, and the same values and gradients as on the CPU.

The fp32 arithmetic runs without TF32 (:func:`cuda_tier.ieee_fp32`); what
remains is a different summation order, about 1e-6 relative, below every
tolerance here.
"""
import pytest
import torch
from cuda_tier import (CUDA, E_STAGES, assert_gradients_close, gradients,
                       ieee_fp32, on_device)
from reference_networks import (e_spikeformer_reference,
                                meta_spikeformer_reference)

pytestmark = pytest.mark.cuda


def test_e_spikeformer_eval_taps_on_cuda(official_fixture):
    backbone, classify = e_spikeformer_reference(official_fixture)
    backbone.eval()
    x = official_fixture['input']
    with torch.no_grad():
        cpu_taps = backbone(x)
        with ieee_fp32():
            cuda_taps = on_device(backbone, CUDA)(x.to(CUDA))
            logits = classify(cuda_taps[-1])
        torch.cuda.synchronize()
    for name, cpu, cuda in zip(E_STAGES, cpu_taps, cuda_taps):
        assert cuda.device.type == 'cuda', name
        expected = official_fixture['eval_stage_outputs'][name]
        assert (cuda.cpu() - expected).abs().max() <= 1e-4, name
        assert (cuda.cpu() - cpu).abs().max() <= 1e-4, name
    assert (logits.cpu() - official_fixture['eval_logits']).abs().max() <= 1e-4


def _e_spikeformer_train_step(backbone, classify, x, device):
    """Training-mode logits, the input's gradient and the parameters'."""
    model = on_device(backbone, device).train()
    x = x.to(device, copy=True).requires_grad_()
    logits = classify(model(x)[-1])
    logits.sum().backward()
    return logits.detach().cpu(), x.grad.cpu(), gradients(model)


def test_e_spikeformer_train_gradients_on_cuda(official_fixture):
    backbone, classify = e_spikeformer_reference(official_fixture)
    x = official_fixture['input']
    _, _, cpu_grads = _e_spikeformer_train_step(backbone, classify, x, 'cpu')
    with ieee_fp32():
        logits, input_grad, cuda_grads = _e_spikeformer_train_step(
            backbone, classify, x, CUDA)
    assert (logits - official_fixture['train_logits']).abs().max() <= 1e-4
    expected = official_fixture['train_input_grad']
    assert (input_grad - expected).abs().max() <= 1e-4 * expected.abs().max()
    assert_gradients_close(cuda_grads, cpu_grads)


def test_meta_spikeformer_eval_logits_on_cuda(meta_reference):
    model = meta_spikeformer_reference(meta_reference).eval()
    x = meta_reference['input']
    with torch.no_grad():
        cpu_logits = model(x)
        with ieee_fp32():
            cuda_logits = on_device(model, CUDA)(x.to(CUDA))
        torch.cuda.synchronize()
    assert cuda_logits.device.type == 'cuda'
    expected = meta_reference['eval_logits']
    assert (cuda_logits.cpu() - expected).abs().max() <= 1e-4
    assert (cuda_logits.cpu() - cpu_logits).abs().max() <= 1e-4


def _meta_train_step(model, x, device):
    model = on_device(model, device).train()
    x = x.to(device, copy=True).requires_grad_()
    logits, _ = model(x)  # training: (head, head_kd)
    logits.sum().backward()
    return logits.detach().cpu(), x.grad.cpu(), gradients(model)


def test_meta_spikeformer_train_gradients_on_cuda(meta_reference):
    model = meta_spikeformer_reference(meta_reference)
    x = meta_reference['input']
    _, _, cpu_grads = _meta_train_step(model, x, 'cpu')
    with ieee_fp32():
        logits, input_grad, cuda_grads = _meta_train_step(model, x, CUDA)
    assert (logits - meta_reference['train_logits']).abs().max() <= 1e-4
    expected = meta_reference['train_input_grad']
    assert (input_grad - expected).abs().max() <= 1e-4 * expected.abs().max()
    assert_gradients_close(cuda_grads, cpu_grads)
