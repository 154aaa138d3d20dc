"""The contract of every spiking neuron, and the one-byte spike code.

Every tool of this package (spike-driven execution, BN folding checks,
spike and energy counting, :class:`~sdt3_mm.engine.FiringRateHook`, the
verify / energy / benchmark tools) and every layer that reads spikes
dispatches on :class:`SpikingNeuron`, never on a concrete neuron class: a
new neuron type that implements it flows through all of them unchanged.

A neuron's output is ``k / norm`` per element and per real time step, with
an integer count ``k`` in ``0..max_level``: ``k`` binary spikes over
``max_level`` virtual time steps. The SFA neuron of Spike-driven
Transformer V3 has ``max_level = D`` (integer training, ``D`` virtual
steps at inference); the LIF neuron of V2 sends binary spikes,
``max_level = 1``. Neurons that run over ``T`` real time steps see them
folded into the batch, time-major (``T * B``); stateless neurons have
``time_steps = 1``.

**Spike codes.** A layer that reads spikes keeps its input for backward
(a conv needs it for the weight gradient), which would be a 4-byte float
per element for a value that is a small integer over ``norm``. In training
a neuron therefore also makes a *spike code*, one ``uint8`` per element:
the count ``k`` in the low seven bits, the top bit free for the neuron's
own backward (the SFA neuron keeps its straight-through mask there). The
neuron is called as a module as usual (its forward hooks run in training
and evaluation alike) and its output tensor carries the code along
(:func:`spike_code_of`); layers that read spikes (see
:mod:`sdt3_mm.models.layers.spike_code_ops`) save the code instead of their input and rebuild
the input exactly in backward with :meth:`SpikeCode.decode`. A code is
only taken from the tensor it was made for, unmodified: an output changed
in place, or replaced by a hook, is read as plain float spikes.
Codes go through ``ctx.save_for_backward`` only, so saved-tensor hooks
(``save_on_cpu``, non-reentrant checkpointing) see them as usual. Under a
tracer or compiler (``torch.jit.trace``, ``torch.compile``,
``torch.export``) neurons fire with plain operations in training too: the
graph then holds ordinary ops, and the compiler plans what to save.
"""
from abc import ABCMeta, abstractmethod
from typing import NamedTuple

import torch
from torch import Tensor, nn

#: Bits of a spike code holding the count ``k`` (the top bit is the
#: neuron's own): ``max_level`` can be at most this.
COUNT_BITS = 0x7F
#: Shift of the neuron's own bit in a spike code.
FLAG_SHIFT = 7


class SpikeCode(NamedTuple):
    """A neuron's output stored as one byte per element.

    Attributes:
        data (Tensor): ``uint8`` codes, the count ``k`` in the low 7 bits.
        norm (float): The divisor: the output is ``k / norm``.
    """

    data: Tensor
    norm: float

    def decode(self, dtype, out=None):
        """The neuron's output, bit for bit (``k / norm`` in ``dtype``).

        Args:
            dtype (torch.dtype): The dtype of the output.
            out (Tensor, optional): Where to write it, of the code's shape
                and ``dtype``, in any memory layout (a layer may want the
                spikes channels_last). Defaults to None (a new tensor).
        """
        counts = self.data & COUNT_BITS
        if out is None:
            return counts.to(dtype).div_(self.norm)
        if out.shape != self.data.shape or out.dtype != dtype:
            raise ValueError(
                f'SpikeCode.decode: out must have the code\'s shape '
                f'{list(self.data.shape)} and dtype {dtype}, got '
                f'{list(out.shape)} {out.dtype}')
        return out.copy_(counts).div_(self.norm)

    def reshape(self, *shape):
        """The code of ``output.reshape(*shape)``."""
        return SpikeCode(self.data.reshape(*shape), self.norm)


class SpikingNeuron(nn.Module, metaclass=ABCMeta):
    """Base class of spiking neurons: the one contract tools dispatch on.

    Subclasses set :attr:`max_level`, :attr:`norm` and :attr:`time_steps`
    and implement :meth:`fire_with_code` (eager training: typically an
    autograd function with the neuron's surrogate gradient that keeps one
    byte per element, plus the spike code) and :meth:`fire_plain` (plain
    tensor operations only, with the same values and the same gradient,
    used under tracers and compilers, so that ``torch.jit.trace``,
    ``torch.export``, ONNX export, FLOP counters and ``torch.compile`` see
    one ordinary graph in both modes); :meth:`fire_eager` (eager
    evaluation) defaults to :meth:`fire_with_code` without the code. The
    two paths are two schedules of one computation: write the neuron's
    maths once, as functions both compose (as :class:`SFANeuron` and
    :class:`MultiStepLIFNeuron` do), so that they cannot drift apart.
    :meth:`spike_counts` and :meth:`binary_maps` have defaults that follow
    from the output contract ``output = k / norm``.

    A neuron may be the activation of mmcv's ``ConvModule`` (its
    ``act_cfg``, as our heads build it): ``ConvModule`` passes ``inplace``
    to every activation it builds, so each neuron's constructor takes that
    argument and leaves it unused. Firing always returns a new tensor; the
    membrane potential it reads is left intact.

    Attributes:
        max_level (int): The largest count ``k`` per element and time step
            (``D`` virtual time steps; 1 for binary spikes).
        norm (float): Divisor of the count in the output.
        time_steps (int): Real time steps folded into the batch
            (time-major ``T * B``); 1 for a neuron without time.
    """

    max_level: int = 1
    norm: float = 1.
    time_steps: int = 1

    def forward(self, x):
        """Spikes ``k / norm`` for the membrane potentials ``x``; in
        training they carry their code (:func:`spike_code_of`)."""
        spikes, code = self.fire(x)
        if code is not None:
            attach_spike_code(spikes, code)
        return spikes

    def fire(self, x):
        """Spikes and, in training, their code for the next layer.

        Args:
            x (Tensor): Membrane potentials.

        Returns:
            tuple[Tensor, SpikeCode | None]: The spikes (as
            :meth:`forward`) and their :class:`SpikeCode` in eager
            training, ``None`` in evaluation mode and under a tracer or
            compiler.
        """
        if _tracing():
            return self.fire_plain(x), None
        if self.training:
            spikes, code = self.fire_with_code(x)
            # No code where no backward will run (no gradient needed).
            return spikes, None if code is None else SpikeCode(code, self.norm)
        return self.fire_eager(x), None

    @abstractmethod
    def fire_with_code(self, x):
        """Training-mode firing: ``(spikes, uint8 code)``.

        The code holds ``k`` in its low seven bits (:data:`COUNT_BITS`);
        it is not differentiable. It may be None when ``x`` needs no
        gradient (no backward will run).
        """

    def fire_eager(self, x):
        """Eager evaluation-mode firing: the spikes only."""
        return self.fire_with_code(x)[0]

    @abstractmethod
    def fire_plain(self, x):
        """Firing with plain tensor operations (for tracers), the same
        values and gradient as :meth:`fire_with_code`."""

    def spike_counts(self, spikes):
        """The integer counts ``k`` of an output (as a float tensor)."""
        return torch.round(spikes * self.norm)

    def binary_maps(self, spikes):
        """The output as ``max_level`` binary maps, one per virtual time
        step, whose sum over ``norm`` is the output: step ``t`` fires where
        ``k > t``."""
        counts = self.spike_counts(spikes)
        return [(counts > step).to(spikes.dtype)
                for step in range(self.max_level)]


_CODE_ATTR = '_sdt3_spike_code'


def attach_spike_code(spikes, code):
    """Let ``spikes`` carry ``code`` for the layers that read them (valid
    while ``spikes`` is not modified in place)."""
    setattr(spikes, _CODE_ATTR, (code, spikes._version))


def spike_code_of(x):
    """The :class:`SpikeCode` ``x`` carries, or None (none attached, or
    ``x`` modified in place since)."""
    entry = getattr(x, _CODE_ATTR, None)
    if entry is None or entry[1] != x._version:
        return None
    return entry[0]


def reshape_spikes(spikes, shape):
    """``spikes.reshape(shape)``, carrying the code along."""
    code = spike_code_of(spikes)
    out = spikes.reshape(shape)
    if code is not None:
        attach_spike_code(out, code.reshape(shape))
    return out


def _tracing():
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


def spiking_neurons(model):
    """The spiking neurons of ``model`` with their names, in order."""
    return [(name, module) for name, module in model.named_modules()
            if isinstance(module, SpikingNeuron)]
