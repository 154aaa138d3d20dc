"""What every spiking backbone of this package shares: time and input."""
from abc import ABCMeta, abstractmethod

from mmengine.model import BaseModule

from sdt3_mm.utils.arguments import is_integer
from ..neurons import spiking_neurons


class SpikingBackbone(BaseModule, metaclass=ABCMeta):
    """Base class of spiking backbones: real time steps and input checks.

    A backbone runs its neurons over ``time_steps`` real time steps. A
    static image is repeated over them and the steps are folded into the
    batch, time-major (``T * B``), for every conv and BN; each tap is then
    either averaged over the steps (``B x C x H x W``) or kept ``T * B``
    deep. With ``time_steps = 1`` (E-SpikeFormer: SFA neurons fire their
    ``D`` virtual steps within one real step) nothing is repeated.

    **Frames.** A ``B x T x C x H x W`` input (event frames, video) is a
    sequence of ``T`` frames per sample: the frames are folded into the
    batch time-major (``T * B``, frame ``t`` of sample ``b`` at
    ``t * B + b``), as the reference's event models do, and each tap is
    averaged over the frames (``B x C x h x w``, for dense heads) or, with
    ``average_time=False``, returned as ``B x T x C x h x w`` (for a head
    that averages its logits over the frames, see ``SpikeClsHead``).
    Stateless neurons (``time_steps = 1``) see each frame on its own, the
    frames meeting only in BN's batch statistics and in the head; a
    backbone with ``time_steps > 1`` takes the frames as its time steps,
    so ``T`` must equal ``time_steps``.

    **Time steps have one source: the neurons.** A backbone takes
    :attr:`time_steps` from its spiking neurons (each neuron's
    ``time_steps``, see :class:`~sdt3_mm.models.neurons.SpikingNeuron`)
    once its layers exist (:meth:`take_time_steps_from_neurons`, called by
    subclasses at the end of construction): ``MultiStepLIFNeuron(T=4)``
    makes a backbone of 4 steps, SFA neurons one of 1. Neurons running
    over different time steps are refused there, naming them (a
    multi-step neuron among stateless ones would read the batch as time).

    Input validation is static (rank, channels, the smallest size, a
    non-empty batch), so it costs no device synchronisation and tracers see
    no data-dependent branch.

    **Smallest input.** Height and width must be at least
    :attr:`min_input_size`, the total stride plus one (17 for the
    stride-16 backbones), so that every tap has at least two positions a
    side. A side the size of the total stride would be one position at
    the last taps, and PyTorch's tracers specialise sizes of one:
    ``torch.export`` (and ONNX's dynamo exporter) with dynamic height and
    width then guards ``ceil(H / 16) != 1`` (in its contiguity checks, the
    attention's reshapes and matmul), so a program exported for dynamic
    sizes refuses it. One minimum in eager mode too means a model takes
    the same inputs before and after export. Values are not checked here: NaN and Inf are
    caught by the analysis tools (see :func:`sdt3_mm.analysis.check_finite`)
    and by training's loss checks, not on every forward.

    Subclasses implement :meth:`forward_taps` on the folded input and set
    ``in_channels`` (checked with :meth:`check_in_channels`) and
    ``total_stride``.

    Args:
        average_time (bool): Average each tap over the time steps (with
            ``time_steps > 1``). Defaults to True.
        init_cfg (dict, optional): Initialisation config.

    Attributes:
        time_steps (int): Real time steps T, those of the neurons (set by
            :meth:`take_time_steps_from_neurons`).
    """

    in_channels = 3
    total_stride = 1

    def __init__(self, average_time=True, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.average_time = average_time

    @property
    def min_input_size(self):
        """The smallest height and width taken: the total stride plus one
        (every tap at least two positions a side; see the class
        docstring)."""
        return self.total_stride + 1

    def check_in_channels(self, in_channels):
        """``in_channels`` as an int; refuses anything but a positive
        integer (Python or numpy; not a bool), naming the argument.

        Raises:
            TypeError: For a non-integer (a float, a string, a bool).
            ValueError: For zero or a negative number.
        """
        name = type(self).__name__
        if not is_integer(in_channels):
            raise TypeError(f'{name}: in_channels (the input\'s channels) '
                            f'must be a positive integer, got '
                            f'{in_channels!r} '
                            f'({type(in_channels).__name__})')
        if in_channels < 1:
            raise ValueError(f'{name}: in_channels (the input\'s channels) '
                             f'must be a positive integer, got '
                             f'{in_channels!r}')
        return int(in_channels)

    def take_time_steps_from_neurons(self):
        """Set :attr:`time_steps` to the time steps the backbone's spiking
        neurons run over (1 without any).

        Raises:
            ValueError: If the neurons run over different time steps,
                naming the first neuron that differs from the first one.
        """
        neurons = spiking_neurons(self)
        self.time_steps = neurons[0][1].time_steps if neurons else 1
        for name, neuron in neurons:
            if neuron.time_steps != self.time_steps:
                first_name, first = neurons[0]
                raise ValueError(
                    f'{type(self).__name__}: neuron {name} '
                    f'({type(neuron).__name__}) runs over '
                    f'{neuron.time_steps} time steps, but neuron '
                    f'{first_name} ({type(first).__name__}) over '
                    f'{first.time_steps}: the backbone\'s time steps are its '
                    f'neurons\', and a multi-step neuron among others would '
                    f'take the batch for time steps')

    def check_input(self, x):
        """Refuse an input of the wrong rank, channels or size, or an empty
        batch (static facts of the shape; nothing is read from the
        values)."""
        if x.dim() == 5:
            if x.shape[2] != self.in_channels:
                raise ValueError(
                    f'{type(self).__name__} expects frames of '
                    f'{self.in_channels} channels, B x T x '
                    f'{self.in_channels} x H x W, got shape '
                    f'{tuple(x.shape)}')
            if x.shape[1] == 0:
                raise ValueError(f'{type(self).__name__}: the input has no '
                                 f'frames (shape {tuple(x.shape)})')
            if self.time_steps > 1 and x.shape[1] != self.time_steps:
                raise ValueError(
                    f'{type(self).__name__}: {x.shape[1]} frames per sample '
                    f'(shape {tuple(x.shape)}), but the backbone\'s neurons '
                    f'run over time_steps={self.time_steps}')
            x = x.flatten(0, 1)
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'{type(self).__name__} expects an N x {self.in_channels} x '
                f'H x W input (or B x T x {self.in_channels} x H x W '
                f'frames), got shape {tuple(x.shape)}')
        # An empty batch would fail deep inside the attention (a reshape of
        # 0 elements with an inferred size). Tracers take a dynamic size
        # to be neither 0 nor 1 (PyTorch's 0/1 specialisation), so this
        # adds no guard to an exported graph; it acts in eager mode.
        if x.shape[0] == 0:
            raise ValueError(
                f'{type(self).__name__}: the input batch is empty (shape '
                f'{tuple(x.shape)}); at least one image is needed')
        smallest = self.min_input_size
        if x.shape[2] < smallest or x.shape[3] < smallest:
            raise ValueError(
                f'{type(self).__name__}: input of {x.shape[2]} x '
                f'{x.shape[3]} pixels is smaller than the smallest it '
                f'takes, {smallest} x {smallest} (the network\'s total '
                f'stride {self.total_stride} plus one, so that every tap '
                f'has two positions a side, as exported programs need)')

    def fold_time(self, x):
        """``B x C x H x W`` images as ``T * B`` time-major steps."""
        if self.time_steps == 1:
            return x
        return x.repeat(self.time_steps, 1, 1, 1)

    def unfold_time(self, tap):
        """A ``T * B`` deep tap, averaged over time if so configured."""
        if self.time_steps == 1 or not self.average_time:
            return tap
        return tap.reshape(self.time_steps, -1, *tap.shape[1:]).mean(0)

    @abstractmethod
    def forward_taps(self, x):
        """The taps for the time-folded input ``x``."""

    def fold_frames(self, x):
        """``B x T x C x H x W`` frames as a ``T * B`` time-major batch."""
        return x.transpose(0, 1).flatten(0, 1)

    def unfold_frames(self, tap, num_frames):
        """A ``T * B`` deep tap of frames, averaged over them (``B x C x h
        x w``) or, with ``average_time=False``, ``B x T x C x h x w``."""
        frames = tap.unflatten(0, (num_frames, -1))
        if self.average_time:
            return frames.mean(0)
        return frames.transpose(0, 1)

    def forward(self, x):
        self.check_input(x)
        if x.dim() == 5:
            taps = self.forward_taps(self.fold_frames(x))
            return tuple(self.unfold_frames(tap, x.shape[1]) for tap in taps)
        taps = self.forward_taps(self.fold_time(x))
        return tuple(self.unfold_time(tap) for tap in taps)
