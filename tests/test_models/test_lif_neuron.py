"""The multi-step LIF neuron: dynamics, surrogate gradient, no state."""
import pytest
import torch

from sdt3_mm.models import MultiStepLIFNeuron


def test_dynamics_by_hand():
    # tau 2, threshold 1, input 1.5 at every step: H = 0.75 (no spike),
    # 0.75 + 0.75 / 2 = 1.125 (spike, reset to 0), 0.75, 1.125.
    neuron = MultiStepLIFNeuron(T=4)
    x = torch.full((4 * 1, 2), 1.5)
    assert neuron(x)[:, 0].tolist() == [0, 1, 0, 1]
    # Threshold 0.5 (the neuron after attention): H = 0.75 fires at once.
    assert MultiStepLIFNeuron(T=4, v_threshold=0.5)(x)[:, 0].tolist() == \
        [1, 1, 1, 1]


def _autograd_reference(x, T, tau=2., threshold=1., alpha=4.):
    """Step by step with autograd: sigmoid surrogate, detached reset."""

    class Spike(torch.autograd.Function):

        @staticmethod
        def forward(ctx, over):
            ctx.save_for_backward(over)
            return (over >= 0).to(over.dtype)

        @staticmethod
        def backward(ctx, grad):
            over, = ctx.saved_tensors
            sig = torch.sigmoid(alpha * over)
            return grad * alpha * sig * (1 - sig)

    potential, spikes = 0., []
    for step in x.reshape(T, -1, *x.shape[1:]):
        charged = potential + (step - potential) / tau
        spike = Spike.apply(charged - threshold)
        potential = charged * (1 - spike.detach())
        spikes.append(spike)
    return torch.stack(spikes).reshape(x.shape)


@pytest.mark.parametrize('T', [1, 4])
def test_matches_step_by_step_autograd(T):
    torch.manual_seed(0)
    x = (torch.randn(T * 3, 4, 5, dtype=torch.float64) * 2).requires_grad_()
    weights = torch.randn_like(x)
    expected = _autograd_reference(x, T)
    (expected * weights).sum().backward()
    expected_grad, x.grad = x.grad, None
    spikes = MultiStepLIFNeuron(T=T)(x)
    (spikes * weights).sum().backward()
    assert torch.equal(spikes, expected)
    assert 0 < spikes.mean() < 1
    assert torch.allclose(x.grad, expected_grad, rtol=1e-12, atol=1e-12)


def test_batch_must_hold_t_steps():
    with pytest.raises(ValueError, match='must be T x batch with T = 4'):
        MultiStepLIFNeuron(T=4)(torch.zeros(6, 3))


@pytest.mark.parametrize('kwargs, message', [(dict(T=0), 'T must be'),
                                             (dict(tau=1.), 'tau must be')])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MultiStepLIFNeuron(**kwargs)


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
@pytest.mark.parametrize('settings',
                         [{}, dict(tau=3., v_threshold=0.7, alpha=5.)])
def test_autograd_function_and_plain_paths_agree(dtype, settings):
    """The autograd function (eager training and evaluation) and the plain
    tensor operations per step that tracers see give the same spikes and,
    bit for bit, the same gradients: both are made of one definition of a
    step, and the function's backward runs the ops autograd runs for it
    (sigmoid's backward in bf16 included, which rounds once)."""
    torch.manual_seed(0)
    neuron = MultiStepLIFNeuron(T=4, **settings)
    x = (torch.randn(4 * 3, 5, 7, 9) * 2).to(dtype)
    grad_out = torch.randn_like(x)
    results = []
    for fire in (neuron, neuron.fire_plain):
        xi = x.clone().requires_grad_()
        spikes = fire(xi)
        spikes.backward(grad_out)
        results.append((spikes, xi.grad))
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])
