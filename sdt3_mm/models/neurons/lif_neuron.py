"""Multi-step leaky integrate-and-fire neuron (Spike-driven Transformer V2)."""
import torch

from sdt3_mm.registry import MODELS
from .spiking_neuron import SpikingNeuron


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

    Returns the spikes and their one-byte code (the spikes as ``uint8``).

    Backward runs back through time by hand: with the reset detached,
    ``dL/dH[t] = dL/dS[t] * sg'(H[t] - v_th) + dL/dV[t] * (1 - S[t])`` and
    ``dL/dV[t-1] = dL/dH[t] * (1 - 1 / tau)``, ``dL/dX[t] = dL/dH[t] / tau``,
    where ``sg'`` is the derivative of ``sigmoid(alpha * x)``.
    """

    @staticmethod
    def forward(ctx, x, tau, threshold, alpha):
        spikes, charged = _run(x, tau, threshold)
        code = spikes.to(torch.uint8)
        ctx.save_for_backward(charged)
        ctx.mark_non_differentiable(code)
        ctx.tau, ctx.threshold, ctx.alpha = tau, threshold, alpha
        return spikes, code

    @staticmethod
    def backward(ctx, grad_spikes, grad_code):
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
class MultiStepLIFNeuron(SpikingNeuron):
    """LIF neuron run over ``T`` time steps, as Meta-SpikeFormer uses it.

    For ``t = 1..T``, per element, starting from ``V[0] = 0`` for every
    input (no state is kept between calls)::

        H[t] = V[t-1] + (X[t] - V[t-1]) / tau
        S[t] = H[t] >= v_th
        V[t] = H[t] * (1 - S[t])          (hard reset, detached)

    Backward uses the derivative of ``sigmoid(alpha * (H - v_th))`` in
    place of the step's. The input is time-major with the time steps
    folded into the batch, ``(T * B, ...)``, as the network's convs see it
    (:attr:`time_steps` is T); the output, binary spikes (``max_level`` 1),
    has the same shape. Under a tracer or compiler the same values and
    surrogate gradient come from plain tensor operations.

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

    @property
    def time_steps(self):
        return self.T

    def _steps(self, x):
        if x.shape[0] % self.T:
            raise ValueError(
                f'MultiStepLIFNeuron: the first dimension ({x.shape[0]}) '
                f'must be T x batch with T = {self.T}')
        return x.reshape(self.T, -1, *x.shape[1:])

    def fire_with_code(self, x):
        spikes, code = _LIFFunction.apply(
            self._steps(x), self.tau, self.v_threshold, self.alpha)
        return spikes.reshape(x.shape), code.reshape(x.shape)

    def fire_plain(self, x):
        steps = self._steps(x)
        potential = torch.zeros_like(steps[0])
        spikes = []
        for t in range(self.T):
            charged = _charge(potential, steps[t], self.tau)
            fired = (charged >= self.v_threshold).to(x.dtype)
            # The step's value with the sigmoid surrogate's gradient.
            surrogate = torch.sigmoid(self.alpha *
                                      (charged - self.v_threshold))
            spike = fired + (surrogate - surrogate.detach())
            spikes.append(spike)
            potential = charged * (1 - fired)
        return torch.stack(spikes).reshape(x.shape)

    def extra_repr(self):
        return (f'T={self.T}, tau={self.tau:g}, '
                f'v_threshold={self.v_threshold:g}, alpha={self.alpha:g}')
