import pytest
import torch

from sdt3_mm.models import SFANeuron
from sdt3_mm.models.neurons.spiking_neuron import SpikeCode


def test_forward_quantises_clamps_and_normalises():
    neuron = SFANeuron(D=4)
    x = torch.tensor([-1.0, 0.2, 0.6, 1.5, 2.5, 3.49, 4.0, 7.0])
    # torch.round: half to even, so 2.5 -> 2 and 1.5 -> 2.
    expected = torch.tensor([0, 0, 1, 2, 2, 3, 4, 4]) / 4
    assert torch.equal(neuron(x), expected)


def test_half_up_rounding_and_raw_integer_output():
    neuron = SFANeuron(D=8, norm=1, rounding='half_up', bounds='open')
    x = torch.tensor([0.5, 1.5, 2.5, 7.6, 9.0])
    assert torch.equal(neuron(x), torch.tensor([1.0, 2.0, 3.0, 8.0, 8.0]))


@pytest.mark.parametrize('training', [True, False])
@pytest.mark.parametrize('bounds,expected_mask', [
    ('closed', [0, 1, 1, 1, 1, 0]),
    ('open', [0, 0, 1, 1, 0, 0]),
])
def test_straight_through_gradient_inside_bounds(bounds, expected_mask,
                                                 training):
    neuron = SFANeuron(D=4, bounds=bounds).train(training)
    x = torch.tensor([-0.5, 0.0, 1.3, 3.9, 4.0, 4.5], requires_grad=True)
    grad_out = torch.arange(1.0, 7.0)
    neuron(x).backward(grad_out)
    assert torch.equal(x.grad, grad_out * torch.tensor(expected_mask) / 4)


def _saved_for_backward(neuron, x):
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(
            lambda t: saved.append(t) or t, lambda t: t):
        neuron(x * 1)
    return saved


def test_training_backward_keeps_one_byte_per_element():
    neuron = SFANeuron()
    x = torch.tensor([-0.5, 0.0, 1.3, 3.9, 4.0, 4.5], requires_grad=True)
    # The spike code: the count in the low bits, the gradient mask in the
    # top bit; the layer after the neuron gets the same code.
    code, = _saved_for_backward(neuron, x)
    assert code.dtype == torch.uint8
    assert code.tolist() == [0, 128, 129, 132, 132, 4]
    spikes, handed = neuron.fire(x)
    assert torch.equal(handed.data, code)
    assert torch.equal(SpikeCode(code, 4.).decode(torch.float32), spikes)


@pytest.mark.parametrize('kwargs', [
    dict(),
    dict(D=8, norm=1, rounding='half_up', bounds='open'),
])
def test_training_evaluation_and_plain_paths_agree(kwargs):
    """Training (autograd function, codes), eager evaluation (the function
    without codes) and the plain tensor operations tracers see give the
    same values, bit for bit, and gradients."""
    torch.manual_seed(0)
    neuron = SFANeuron(**kwargs)
    x = torch.cat([torch.randn(1000) * 4, torch.arange(-1, 10, 0.25)])
    grad_out = torch.randn_like(x)
    results = []
    for fire in (lambda t: neuron.train()(t), lambda t: neuron.eval()
                 (t), neuron.fire_plain):
        xi = x.clone().requires_grad_()
        out = fire(xi)
        out.backward(grad_out)
        results.append((out, xi.grad))
    for out, grad in results[1:]:
        assert torch.equal(results[0][0], out)
        assert torch.equal(results[0][1], grad)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_low_precision_and_autocast(dtype):
    neuron = SFANeuron()
    x = (torch.rand(32) * 6 - 1).to(dtype).requires_grad_()
    out = neuron(x)
    assert out.dtype == dtype
    reference = torch.round(torch.clamp(x.float(), 0, 4)) / 4
    assert torch.equal(out.float(), reference)
    out.sum().backward()
    assert x.grad.dtype == dtype

    linear = torch.nn.Linear(8, 8)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        y = neuron(linear(torch.randn(4, 8)))
    assert y.dtype == torch.bfloat16
    assert torch.all((y * 4) == torch.round(y * 4))


def test_eval_without_grad_builds_no_graph():
    neuron = SFANeuron()
    x = torch.randn(8, requires_grad=True)
    with torch.no_grad():
        out = neuron(x)
    assert out.grad_fn is None
    assert neuron(torch.randn(8)).grad_fn is None


@pytest.mark.parametrize('kwargs,message', [
    (dict(D=0), 'D must be an integer in 1..127'),
    (dict(D=2.5), 'D must be an integer in 1..127'),
    (dict(D=128), 'D must be an integer in 1..127'),
    (dict(rounding='stochastic'), 'rounding must be one of'),
    (dict(bounds='half'), 'bounds must be one of'),
    (dict(norm=0), 'norm must be positive'),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SFANeuron(**kwargs)
