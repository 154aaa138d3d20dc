"""What a loaded checkpoint holds: its model state dict, its tensors, and
whether they are finite.

One reading of each: :func:`model_state_dict` is how every loader of
sdt3_mm finds the weights in a checkpoint, :func:`nested_tensors` how the
tensors of a checkpoint (or an optimizer's state) are walked, and
:func:`all_finite` / :func:`describe_non_finite` how NaN and Inf are found
and named, by the load check (:func:`check_checkpoint_content`) and by
:class:`~sdt3_mm.reliability.NonFiniteCheckHook` alike.
"""
import torch

# How many non-finite tensors a description lists by name.
_NAMED_AT_MOST = 10


def model_state_dict(checkpoint):
    """The model weights of a loaded checkpoint.

    Args:
        checkpoint (dict): A runner checkpoint (weights under
            ``'state_dict'``), an official one (under ``'model'``) or a
            plain state dict.

    Returns:
        dict: ``checkpoint['state_dict']`` or ``checkpoint['model']``, the
        first of them that is a dict, else ``checkpoint`` itself.
    """
    for key in ('state_dict', 'model'):
        if isinstance(checkpoint.get(key), dict):
            return checkpoint[key]
    return checkpoint


def nested_tensors(obj, path=''):
    """The tensors nested in ``obj`` (dicts, lists and tuples), named by
    their path.

    Args:
        obj (object): A state dict, a checkpoint, an optimizer's state, or
            a list of them.
        path (str): The name of ``obj``; its items are named
            ``path/key`` (just ``key`` when ``path`` is empty).

    Returns:
        list[tuple[str, torch.Tensor]]: Each tensor with its path, in the
        order of the containers.
    """
    if isinstance(obj, torch.Tensor):
        return [(path, obj)]
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return []
    tensors = []
    for key, item in items:
        tensors.extend(
            nested_tensors(item, f'{path}/{key}' if path else str(key)))
    return tensors


def floating_tensors(obj, path=''):
    """The floating-point and complex tensors of :func:`nested_tensors`,
    detached: those that can hold NaN or Inf."""
    return [(name, tensor.detach())
            for name, tensor in nested_tensors(obj, path)
            if tensor.is_floating_point() or tensor.is_complex()]


def tensor_bytes(obj):
    """Bytes of the tensors in ``obj`` (see :func:`nested_tensors`), each
    storage counted once.

    That is what ``torch.save`` writes for them; the file holds a little
    more (the pickle, the zip headers, the message hub: about 2 % for the
    demo classifier's runner checkpoint, 31.0 MB of tensors in a 31.6 MB
    file), so this is a lower bound of a checkpoint's size.

    Args:
        obj (object): A state dict, an optimizer's, or a list of them.

    Returns:
        int: The bytes.
    """
    storages = {}
    for _, tensor in nested_tensors(obj):
        storage = tensor.untyped_storage()
        storages[(storage.data_ptr(), storage.nbytes())] = storage.nbytes()
    return sum(storages.values())


def all_finite(tensors):
    """Whether all values of all ``tensors`` are finite, as a 0-d bool
    tensor on the device of the first (no synchronisation).

    One reduction per tensor, ``aminmax``: minimum and maximum are both
    finite exactly when all values are (NaN propagates to both, an
    infinity is one of them), and no sum can overflow. On CPU it is about
    5x faster than ``isfinite().all()`` and allocates nothing tensor-sized.

    Args:
        tensors (Iterable[torch.Tensor]): Floating-point or complex
            tensors.

    Returns:
        torch.Tensor: A 0-d bool tensor; True for no tensors.
    """
    extrema = []
    for tensor in tensors:
        if tensor.is_complex():
            tensor = torch.view_as_real(tensor)
        if tensor.numel():
            extrema.extend(torch.aminmax(tensor))
    if not extrema:
        return torch.tensor(True)
    device = extrema[0].device
    # stack promotes to the widest dtype, which holds every value exactly.
    extrema = torch.stack([value.to(device) for value in extrema])
    return extrema.isfinite().all()


def describe_non_finite(named_tensors):
    """Name the tensors that hold NaN or Inf, with their counts.

    Args:
        named_tensors (Sequence[tuple[str, torch.Tensor]]): Floating-point
            or complex tensors with their names.

    Returns:
        tuple[int, str]: How many of them are non-finite, and a description
        of the first ten, such as ``'conv.weight (1 NaN of 4096); bn.bias
        (2 Inf of 64)'``, with ``', and N more'`` after ten. ``(0, '')``
        when all are finite.
    """
    bad = []
    with torch.no_grad():
        for name, tensor in named_tensors:
            finite = torch.isfinite(tensor)
            if bool(finite.all()):
                continue
            nan = int(torch.isnan(tensor).sum())
            inf = tensor.numel() - int(finite.sum()) - nan
            counts = ', '.join(f'{n} {kind}'
                               for n, kind in ((nan, 'NaN'), (inf, 'Inf'))
                               if n)
            bad.append(f'{name} ({counts} of {tensor.numel()})')
    more = (f', and {len(bad) - _NAMED_AT_MOST} more'
            if len(bad) > _NAMED_AT_MOST else '')
    return len(bad), '; '.join(bad[:_NAMED_AT_MOST]) + more


def check_checkpoint_content(checkpoint, source):
    """Refuse a loaded checkpoint that is not a dict, or whose model
    weights hold NaN or Inf.

    What is checked: every floating-point (and complex) tensor of the
    model's state dict (:func:`model_state_dict`): parameters and buffers
    alike (a BN ``running_var`` too). What is not: the optimizer state,
    the parameter schedulers, ``meta`` and the ``message_hub``, which may
    hold non-finite values legitimately (a logged loss of inf). A model
    evaluated with a NaN weight prints metrics of NaN outputs; a run
    resumed from it trains NaN.

    Args:
        checkpoint (object): What the file held.
        source (str): The file (or URL), named in errors.

    Raises:
        TypeError: If ``checkpoint`` is not a dict (a pickled list, a bare
            tensor).
        ValueError: If a tensor of the model's state dict holds NaN or Inf;
            the message names the tensors (the first ten) with their
            counts.
    """
    if not isinstance(checkpoint, dict):
        raise TypeError(
            f'checkpoint {source} holds a {type(checkpoint).__name__}, not '
            f'a state dict (a dict of tensors, or a runner checkpoint with '
            f'one under \'state_dict\')')
    tensors = floating_tensors(model_state_dict(checkpoint))
    # One reduction per tensor and one check of all; only on failure is
    # each tensor looked at element by element.
    if bool(all_finite(tensor for _, tensor in tensors)):
        return
    count, description = describe_non_finite(tensors)
    raise ValueError(
        f'checkpoint {source} has non-finite values in {count} tensor(s) '
        f'of its model state dict: {description}. The weights are damaged '
        f'(or the run that saved them diverged); a model with them '
        f'computes NaN.')
