"""Multi-step leaky integrate-and-fire neuron (Spike-driven Transformer V2).

The neuron's maths is written once, as one time step (:func:`_charge`,
:func:`_fire`, :func:`_reset` and the surrogate :func:`_surrogate`). The
plain path runs the steps with autograd; the eager autograd function runs
them without a graph, keeps only the charged potentials, and in backward
goes back through time with the ops autograd would run for the same steps
(:func:`_step_backward`, without building a graph per step), so both paths
give the same spikes and, bit for bit, the same gradients.
"""
import torch

from sdt3_mm.registry import MODELS
from .spiking_neuron import SpikingNeuron


def _charge(potential, x, tau):
    """The charged potential ``H[t]`` from ``V[t-1]`` and the input.

    SpikingJelly's decay_input form with v_reset = 0, in its order of
    operations, so that thresholds are crossed where the reference's are.
    """
    return potential + (x - potential) / tau


def _fire(charged, threshold):
    """The spikes ``S[t] = H[t] >= v_th`` (no gradient of its own)."""
    return (charged >= threshold).to(charged.dtype)


def _reset(charged, fired):
    """``V[t] = H[t] * (1 - S[t])``: hard reset to 0, the spikes detached."""
    return charged * (1 - fired)


def _surrogate(charged, threshold, alpha):
    """The function whose gradient the spikes take: ``sigmoid(alpha * (H[t]
    - v_th))``."""
    return torch.sigmoid(alpha * (charged - threshold))


def _steps_without_graph(x, tau, threshold):
    """Spikes and charged potentials of all steps of ``x`` (``T x ...``),
    computed without an autograd graph."""
    potential = torch.zeros_like(x[0])
    charged, spikes = torch.empty_like(x), torch.empty_like(x)
    for t in range(x.shape[0]):
        charged[t] = _charge(potential, x[t], tau)
        spikes[t] = _fire(charged[t], threshold)
        potential = _reset(charged[t], spikes[t])
    return spikes, charged


def _surrogate_backward(grad, surrogate, alpha):
    """The gradient through :func:`_surrogate`, given its output: the ops
    autograd runs for it (sigmoid's backward, then the product with
    ``alpha``), so that the two paths agree bit for bit in every dtype."""
    return torch.ops.aten.sigmoid_backward(grad, surrogate) * alpha


def _step_backward(charged, grad_spikes, grad_potential, tau, threshold,
                   alpha):
    """One step back through time, as autograd differentiates the step's
    functions (:func:`_surrogate`, :func:`_reset`, :func:`_charge`), written
    out: a graph per step and time step cost more than the arithmetic.

    Args:
        charged (Tensor): ``H[t]``.
        grad_spikes (Tensor): ``dL/dS[t]``.
        grad_potential (Tensor): ``dL/dV[t]`` (from step ``t + 1``).

    Returns:
        tuple[Tensor, Tensor]: ``dL/dX[t]`` and ``dL/dV[t-1]``.
    """
    surrogate = _surrogate(charged, threshold, alpha)
    # _reset's gradient: the spikes are detached, H[t] * (1 - S[t]) passes
    # (1 - S[t]).
    grad_charged = (
        _surrogate_backward(grad_spikes, surrogate, alpha) + grad_potential *
        (1 - _fire(charged, threshold)))
    # _charge is V + (X - V) / tau: X receives grad / tau, V the rest.
    grad_x = grad_charged / tau
    return grad_x, grad_charged - grad_x


class _LIFFunction(torch.autograd.Function):
    """All T steps in one op: only the charged potentials are saved.

    Returns the spikes and their one-byte code (the spikes as ``uint8``).
    Backward goes back through time with :func:`_step_backward`.
    """

    @staticmethod
    def forward(ctx, x, tau, threshold, alpha):
        spikes, charged = _steps_without_graph(x, tau, threshold)
        code = spikes.to(torch.uint8)
        ctx.save_for_backward(charged)
        ctx.mark_non_differentiable(code)
        ctx.tau, ctx.threshold, ctx.alpha = tau, threshold, alpha
        return spikes, code

    @staticmethod
    def backward(ctx, grad_spikes, grad_code):
        charged, = ctx.saved_tensors
        grad_x = torch.empty_like(charged)
        grad_potential = torch.zeros_like(charged[0])
        for t in reversed(range(charged.shape[0])):
            grad_x[t], grad_potential = _step_backward(charged[t],
                                                       grad_spikes[t],
                                                       grad_potential, ctx.tau,
                                                       ctx.threshold,
                                                       ctx.alpha)
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
    surrogate gradient come from the same steps as plain tensor operations.

    Args:
        T (int): Time steps. Defaults to 4.
        tau (float): Membrane time constant. Defaults to 2.
        v_threshold (float): Firing threshold. Defaults to 1.
        alpha (float): Sharpness of the sigmoid surrogate. Defaults to 4.
        inplace (bool): Unused; see :class:`SpikingNeuron`. Defaults to
            False.
    """

    def __init__(self, T=4, tau=2., v_threshold=1., alpha=4., inplace=False):
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
            fired = _fire(charged, self.v_threshold)
            # The step's value with the surrogate's gradient.
            surrogate = _surrogate(charged, self.v_threshold, self.alpha)
            spikes.append(fired + (surrogate - surrogate.detach()))
            potential = _reset(charged, fired)
        return torch.stack(spikes).reshape(x.shape)

    def extra_repr(self):
        return (f'T={self.T}, tau={self.tau:g}, '
                f'v_threshold={self.v_threshold:g}, alpha={self.alpha:g}')
