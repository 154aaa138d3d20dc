"""Multi-step leaky integrate-and-fire neuron (Spike-driven Transformer V2)."""
import torch
from torch import nn

from sdt3_mm.registry import MODELS


def _charge(potential, x, tau):
    # SpikingJelly's decay_input form with v_reset = 0, in its order of
    # operations, so that thresholds are crossed where the reference's are.
    return potential + (x - potential) / tau


def _run(x, tau, threshold):
    """Spikes and charged potentials of all steps of ``x`` (``T x ...``)."""
    potential = torch.zeros_like(x[0])
    charged, spikes = torch.empty_like(x), torch.empty_like(x)
    for t in range(x.shape[0]):
        charged[t] = _charge(potential, x[t], tau)
        spikes[t] = (charged[t] >= threshold).to(x.dtype)
        potential = charged[t] * (1 - spikes[t])
    return spikes, charged


class _LIFFunction(torch.autograd.Function):
    """All T steps in one op: only the charged potentials are saved.

    Backward runs back through time by hand: with the reset detached,
    ``dL/dH[t] = dL/dS[t] * sg'(H[t] - v_th) + dL/dV[t] * (1 - S[t])`` and
    ``dL/dV[t-1] = dL/dH[t] * (1 - 1 / tau)``, ``dL/dX[t] = dL/dH[t] / tau``,
    where ``sg'`` is the derivative of ``sigmoid(alpha * x)``.
    """

    @staticmethod
    def forward(ctx, x, tau, threshold, alpha):
        spikes, charged = _run(x, tau, threshold)
        ctx.save_for_backward(charged)
        ctx.tau, ctx.threshold, ctx.alpha = tau, threshold, alpha
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes):
        charged, = ctx.saved_tensors
        tau, threshold, alpha = ctx.tau, ctx.threshold, ctx.alpha
        grad_x = torch.empty_like(charged)
        grad_potential = torch.zeros_like(charged[0])
        for t in reversed(range(charged.shape[0])):
            over = charged[t] - threshold
            sig = torch.sigmoid(alpha * over)
            not_fired = (over < 0).to(charged.dtype)
            grad_charged = grad_spikes[t] * alpha * sig * (1 - sig) + \
                grad_potential * not_fired
            grad_x[t] = grad_charged / tau
            grad_potential = grad_charged * (1 - 1 / tau)
        return grad_x, None, None, None


@MODELS.register_module()
class MultiStepLIFNeuron(nn.Module):
    """LIF neuron run over ``T`` time steps, as Meta-SpikeFormer uses it.

    For ``t = 1..T``, per element, starting from ``V[0] = 0`` for every
    input (no state is kept between calls)::

        H[t] = V[t-1] + (X[t] - V[t-1]) / tau
        S[t] = H[t] >= v_th
        V[t] = H[t] * (1 - S[t])          (hard reset, detached)

    Backward uses the derivative of ``sigmoid(alpha * (H - v_th))`` in
    place of the step's. The input is time-major with the time steps
    folded into the batch, ``(T * B, ...)``, as the network's convs see it;
    the output, binary spikes, has the same shape.

    Args:
        T (int): Time steps. Defaults to 4.
        tau (float): Membrane time constant. Defaults to 2.
        v_threshold (float): Firing threshold. Defaults to 1.
        alpha (float): Sharpness of the sigmoid surrogate. Defaults to 4.
    """

    def __init__(self, T=4, tau=2., v_threshold=1., alpha=4.):
        super().__init__()
        if int(T) != T or T < 1:
            raise ValueError(f'MultiStepLIFNeuron: T must be a positive '
                             f'integer, got {T!r}')
        if tau <= 1:
            raise ValueError(f'MultiStepLIFNeuron: tau must be above 1, '
                             f'got {tau!r}')
        self.T = int(T)
        self.tau = float(tau)
        self.v_threshold = float(v_threshold)
        self.alpha = float(alpha)

    def forward(self, x):
        if x.shape[0] % self.T:
            raise ValueError(
                f'MultiStepLIFNeuron: the first dimension ({x.shape[0]}) '
                f'must be T x batch with T = {self.T}')
        steps = x.reshape(self.T, -1, *x.shape[1:])
        if torch.is_grad_enabled() and x.requires_grad:
            spikes = _LIFFunction.apply(steps, self.tau, self.v_threshold,
                                        self.alpha)
        else:
            spikes, _ = _run(steps, self.tau, self.v_threshold)
        return spikes.reshape(x.shape)

    def extra_repr(self):
        return (f'T={self.T}, tau={self.tau:g}, '
                f'v_threshold={self.v_threshold:g}, alpha={self.alpha:g}')
