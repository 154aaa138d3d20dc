"""Checks of what the analysis tools feed a model.

The backbones check only static facts of their input (rank, channels,
size): a check of the values would cost a device synchronisation on every
forward. NaN and Inf are refused here instead, once per batch, by the
tools that run a model on data (``verify_spike_driven.py``,
``spike_energy.py``, ``benchmark.py``). It matters for spiking models in
particular: a neuron maps +Inf to its largest count and -Inf to silence
without complaint, and NaN flows on to the output.
"""
import torch


def check_finite(tensor, what='the input'):
    """Refuse NaN and Inf in ``tensor``, naming ``what`` and where.

    Args:
        tensor (Tensor | list | tuple | dict): The values; lists, tuples
            and dicts are checked item by item (their index or key is
            added to ``what``). Integer tensors and anything that is not a
            tensor pass.
        what (str): What the values are, for the message. Defaults to
            ``'the input'``.

    Returns:
        The argument, unchanged.

    Raises:
        ValueError: ``"<what> contains NaN or Inf: ..."`` with the number
            of NaN and of Inf values and the index of the first one.
    """
    if isinstance(tensor, dict):
        for key, item in tensor.items():
            check_finite(item, f'{what}[{key!r}]')
        return tensor
    if isinstance(tensor, (list, tuple)):
        for i, item in enumerate(tensor):
            check_finite(item, f'{what}[{i}]')
        return tensor
    if not isinstance(tensor, torch.Tensor) or not (tensor.is_floating_point()
                                                    or tensor.is_complex()):
        return tensor
    finite = torch.isfinite(tensor)
    if bool(finite.all()):
        return tensor
    num_nan = int(torch.isnan(tensor).sum())
    num_inf = int(torch.isinf(tensor).sum())
    first = tuple(int(i) for i in (~finite).nonzero()[0])
    raise ValueError(
        f'{what} contains NaN or Inf: {num_nan} NaN and {num_inf} Inf of '
        f'{tensor.numel()} values (shape {tuple(tensor.shape)}), the first '
        f'at index {first}')
