"""Loading checkpoints from any source under ``torch.load(weights_only=True)``.

Loading a pickle runs whatever code it names, so sdt3_mm reads every
checkpoint with torch's weights-only unpickler: :func:`safe_torch_load`.
torch >= 2.6 uses that unpickler by default, but it rejects the checkpoints
mmengine's runner writes: their ``message_hub`` pickles ``HistoryBuffer``
objects holding numpy arrays. Rather than turning the restriction off, we
keep ``weights_only=True`` and, only for a file that needs it, allow
exactly (name by name, no prefixes) the classes such a runner checkpoint is
made of. A plain state dict is loaded with nothing allowed beyond torch's
defaults, and a file that needs anything else is refused with the names of
the globals it needs. Both torch's zip format and the legacy (pre-1.6)
format are read this way.

Importing sdt3_mm changes none of mmengine's loaders. mmengine reads
checkpoints through ``CheckpointLoader``, which picks a loader by the
scheme of the name: local paths (``''``), ``http://`` and ``https://``
(through torch hub, which unpickles with ``weights_only=False``),
``open-mmlab://``, ``openmmlab://``, ``mmcls://``, ``torchvision://``,
``modelzoo://`` (URLs resolved from mmengine's model lists), ``pavi://``
and ``s3://`` / ``petrel://`` (storage backends). While safe loading is
switched on, with :func:`safe_checkpoint_loading` (a context manager),
:func:`enable_safe_checkpoint_loading` or, in a config,
``custom_hooks = [dict(type='sdt3_mm.SafeCheckpointLoadingHook')]``, every
one of those schemes has a loader of ours that resolves the name as
mmengine does, downloads remote files (into a private folder; a file
enters torch hub's cache, ``torch.hub.get_dir()/checkpoints``, where
mmengine's own loader would find and fully unpickle it, only once it has
loaded weights-only) or reads the bytes through mmengine's file backends,
and then unpickles with :func:`safe_torch_load`, which also checks the
file (zip CRCs) and the weights (finite). Switching off puts back exactly
the loaders that were in place. sdt3_mm's own code (``read_state_dict`` of
``Pretrained`` init of an ESpikeFormer) always loads through
:func:`safe_checkpoint_loader`, switched on or not.
"""
import contextlib
import io
import logging
import os
import os.path as osp
import pickle
import re
import tempfile
import zipfile
import zlib
from urllib.parse import urlparse

import torch
from mmengine import fileio
from mmengine.dist import get_dist_info
from mmengine.logging import print_log
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from .checkpoint_content import check_checkpoint_content
from .checkpoint_files import checkpoint_file_defect


def _history_buffer_method(owner, name):
    """The one ``getattr`` a runner checkpoint needs.

    ``HistoryBuffer`` pickles its statistics methods (``min``, ``mean``,
    ...) as ``getattr(HistoryBuffer, name)``. A plain ``getattr`` would
    reach anything from any allowed object, so the unpickler is given this
    stand-in, which returns those methods and nothing else.
    """
    from mmengine.logging import HistoryBuffer
    methods = {'min', 'max', 'current', 'mean'}
    if owner is HistoryBuffer and name in methods.union(
            HistoryBuffer._statistics_methods):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'refusing getattr({owner!r}, {name!r}) while loading a runner '
        f'checkpoint')


def _numpy_multiarray():
    """The module that holds numpy's ``_reconstruct`` and ``scalar``.

    Imported from where the installed numpy keeps it, so that neither
    numpy 1 (``numpy.core``) nor numpy 2 (``numpy._core``, which warns on
    ``numpy.core``) imports its compatibility shim.
    """
    import numpy as np
    if int(np.__version__.split('.')[0]) >= 2:
        from numpy._core import multiarray
    else:
        from numpy.core import multiarray
    return multiarray


def _runner_safe_globals():
    """What ``torch.serialization.safe_globals`` is given for a runner
    checkpoint: each global under its exact pickled name.

    Measured on runner checkpoints of mmengine 0.10.7 under numpy 1.26,
    which name ``HistoryBuffer``, ``builtins.getattr`` (its methods),
    ``numpy.ndarray``, ``numpy.dtype`` and ``numpy.core.multiarray``'s
    ``_reconstruct`` and ``scalar`` (``numpy._core.multiarray`` under
    numpy 2; a file from either loads under the other).
    """
    import numpy as np
    from mmengine.logging import HistoryBuffer
    multiarray = _numpy_multiarray()
    allowed = [
        (HistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
        (_history_buffer_method, 'builtins.getattr'),
        (np.ndarray, 'numpy.ndarray'),
        (np.dtype, 'numpy.dtype'),
    ]
    for name in ('_reconstruct', 'scalar'):
        function = getattr(multiarray, name)
        allowed += [(function, f'numpy.core.multiarray.{name}'),
                    (function, f'numpy._core.multiarray.{name}')]
    # An unpickled np.dtype('f8') is an instance of its class
    # (numpy.dtypes.Float64DType under numpy >= 1.25), which the
    # weights-only unpickler sets the state of only for allowed types. No
    # file names these classes; they are allowed as the classes of the
    # bool, integer and float dtypes that logged values have, not as names.
    dtype_classes = {type(np.dtype(code)) for code in '?bhilqBHILQefd'}
    return allowed + sorted(
        (cls for cls in dtype_classes if cls is not np.dtype),
        key=lambda cls: cls.__name__)


def _describe_source(f):
    if isinstance(f, (str, os.PathLike)):
        return os.fspath(f)
    return getattr(f, 'name', None) or repr(f)


def _weights_unpickler_reason(error):
    """What the weights-only unpickler said, without torch's wrapping
    (which advises loading with ``weights_only=False`` or allowlisting the
    global)."""
    text = re.split(r'\s*Check the documentation of torch\.load',
                    str(error))[0]
    _, marker, reason = text.rpartition('WeightsUnpickler error:')
    reason = reason.strip() if marker else ''
    if not reason:  # torch puts the unpickler's message last
        reason = text.strip().split('\n\n')[-1]
    reason = reason.split(' Please use `torch.serialization')[0]
    return ' '.join(reason.split())


def _refused_globals(f, start, error):
    """Names of the globals that made the weights-only load fail.

    torch lists every one in a zip file without unpickling anything; a
    legacy file cannot be listed that way, and torch's message names the
    first one it refused.
    """
    try:
        if start is not None:
            f.seek(start)
        names = torch.serialization.get_unsafe_globals_in_checkpoint(f)
    except (ValueError, RuntimeError):  # legacy format (or no zip at all)
        names = []
    return sorted(names) or re.findall(r'GLOBAL (\S+)', str(error))


class CheckpointFileError(RuntimeError):
    """A checkpoint file that cannot be read as one: empty, truncated,
    damaged (a zip record failing its CRC check), not a PyTorch file at
    all, or one torch fails to load. The message names the file."""


def safe_torch_load(f, map_location=None, source=None):
    """``torch.load`` a checkpoint with ``weights_only=True``, after
    checking its bytes, and check what it holds.

    Before loading, the file is checked whole (see
    :func:`~.checkpoint_files.checkpoint_file_defect`, every zip record's
    CRC read): an empty, truncated, damaged (a zip record
    failing its CRC check) or non-PyTorch file is refused, naming the file
    and the defect. Then plain state dicts load as they are. A file the
    weights-only unpickler rejects is loaded once more with mmengine's
    runner-checkpoint classes allowed (see :func:`_runner_safe_globals`);
    if it still fails, it is refused. Nothing in the file is ever run
    beyond what torch's weights-only unpickler and those classes allow.
    Both torch's zip format and its legacy format are accepted. Last, the
    loaded checkpoint must be a dict whose model weights are finite (see
    :func:`~.checkpoint_content.check_checkpoint_content`).

    Every loader of sdt3_mm ends here (``tools/test.py``, ``--resume``,
    ``load_from``, ``Pretrained`` init, the converter, the analysis and
    deployment tools), so these checks are made once, here.

    Args:
        f (str | os.PathLike | file-like): Path of the file, or a binary
            file object that supports ``seek`` and ``tell`` (it is read
            from its current position, possibly twice).
        map_location (str | torch.device | Callable, optional): As in
            ``torch.load``.
        source (str, optional): How to name the checkpoint in errors, such
            as the URL it was downloaded from. Defaults to the path or the
            file object's ``name``.

    Returns:
        object: The loaded checkpoint.

    Raises:
        CheckpointFileError: If the file is empty, truncated, damaged, not
            a PyTorch file, or torch fails to load it otherwise; the
            message names the file and the cause.
        pickle.UnpicklingError: If the file needs globals beyond torch's
            defaults and those of a runner checkpoint; the message names
            the file (``source``) and the refused globals (or torch's
            reason, such as a refused ``getattr``).
        TypeError, ValueError: See
            :func:`~.checkpoint_content.check_checkpoint_content`.
    """
    source = source or _describe_source(f)
    defect = checkpoint_file_defect(f)
    if defect is not None:
        raise CheckpointFileError(
            f'could not read checkpoint {source}: it is {defect}')
    checkpoint = _load_weights_only(f, map_location, source)
    check_checkpoint_content(checkpoint, source)
    return checkpoint


def _load_weights_only(f, map_location, source):
    """The two weights-only loads of :func:`safe_torch_load`."""
    start = None if isinstance(f, (str, os.PathLike)) else f.tell()
    try:
        return _torch_load(f, map_location, source)
    except pickle.UnpicklingError:
        pass
    # torch names only the first global it refuses, so rather than allowing
    # them one by one, retry once with everything a runner checkpoint has.
    with torch.serialization.safe_globals(_runner_safe_globals()):
        if start is not None:
            f.seek(start)
        try:
            return _torch_load(f, map_location, source)
        except pickle.UnpicklingError as error:
            # still inside the block: the runner globals are not listed
            refused = _refused_globals(f, start, error)
            reason = _weights_unpickler_reason(error)
    needs = (f'; it needs {", ".join(refused)}, which sdt3_mm does not '
             f'unpickle' if refused else '')
    raise pickle.UnpicklingError(
        f'refused to load checkpoint {source}: it is neither a plain state '
        f'dict nor an mmengine runner checkpoint{needs} (torch: {reason}). '
        f'If you trust the file, load it with torch.load(..., '
        f'weights_only=False) and save its state dict.')


def _torch_load(f, map_location, source):
    """``torch.load(weights_only=True)``; what it raises for a file it
    cannot read (an ``EOFError``, a ``KeyError`` of a stray byte, torch's
    ``RuntimeError``) becomes a :class:`CheckpointFileError` naming the
    file. A refusal of the unpickler (``UnpicklingError``) passes."""
    try:
        return torch.load(f, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise
    except Exception as error:
        raise CheckpointFileError(
            f'could not read checkpoint {source}: torch.load failed with '
            f'{type(error).__name__}: {error}') from error


# ---------------------------------------------------------------------------
# Loaders for the schemes of mmengine's CheckpointLoader. Each resolves the
# name as mmengine's loader of the same scheme does and reads the file with
# safe_torch_load. They are called as loader(filename, map_location) and need
# a __name__ (CheckpointLoader logs it), so they are plain functions.
# ---------------------------------------------------------------------------


def load_from_local_safely(filename, map_location=None):
    """Load a local checkpoint with :func:`safe_torch_load` (scheme ``''``).

    Args:
        filename (str): Path; ``~`` is expanded.
        map_location (optional): As in ``torch.load``.

    Returns:
        object: The loaded checkpoint.

    Raises:
        FileNotFoundError: If there is no such file.
        pickle.UnpicklingError: See :func:`safe_torch_load`.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} does not exist')
    return safe_torch_load(filename, map_location=map_location)


def _load_downloaded(cached_file, map_location, source):
    # torch hub still accepts a pre-1.6 file zipped by hand (a zip holding
    # one file; torch's own zip format holds several): read it from there.
    if zipfile.is_zipfile(cached_file):
        with zipfile.ZipFile(cached_file) as archive:
            members = archive.infolist()
            if len(members) == 1 and not members[0].is_dir():
                try:  # (reading checks the member's CRC)
                    data = archive.read(members[0])
                except (zipfile.BadZipFile, zlib.error, EOFError) as error:
                    raise CheckpointFileError(
                        f'could not read checkpoint {source}: it is a zip '
                        f'archive whose one file {members[0].filename} is '
                        f'damaged ({error})') from error
                with io.BytesIO(data) as buffer:
                    return safe_torch_load(
                        buffer, map_location=map_location, source=source)
    return safe_torch_load(
        cached_file, map_location=map_location, source=source)


def _hub_cached_file(url, model_dir):
    """Where torch hub (and mmengine, through it) caches ``url``:
    ``model_dir`` (default ``torch.hub.get_dir()/checkpoints``) joined with
    the URL's file name."""
    if model_dir is None:
        model_dir = osp.join(torch.hub.get_dir(), 'checkpoints')
    return osp.join(model_dir, osp.basename(urlparse(url).path))


def _fetch_verified(url, model_dir, progress, check_hash, map_location):
    """Load ``url`` through torch hub's cache, letting only a verified file
    into it.

    torch hub's cache is shared: mmengine's own ``load_from_http`` (and
    ``torch.hub.load_state_dict_from_url``) loads any file found there
    under the URL's file name, whatever host the URL names and without the
    network, with ``weights_only=False``. A file is therefore downloaded
    into a private folder (``mkdtemp``, mode 0700, inside the cache folder
    so that the final move is a rename), loaded there with
    :func:`safe_torch_load`, and moved to its cache name only once it has
    loaded; a refused or damaged download is deleted with its folder. A
    file already in the cache is not trusted either: it is loaded the same
    way before use (and, when refused, left where it is: sdt3_mm did not
    put it there).

    Returns:
        tuple[object, str]: The checkpoint and the cached file.
    """
    cached_file = _hub_cached_file(url, model_dir)
    if osp.exists(cached_file):
        return _load_downloaded(
            cached_file, map_location,
            f'{url} (found in torch hub\'s cache as {cached_file}, put '
            f'there earlier, by a load that did not check it?)'), cached_file
    model_dir = osp.dirname(cached_file)
    os.makedirs(model_dir, exist_ok=True)
    hash_prefix = None
    if check_hash:
        match = torch.hub.HASH_REGEX.search(osp.basename(cached_file))
        hash_prefix = match[1] if match else None
    with tempfile.TemporaryDirectory(
            prefix='.sdt3_mm-unverified-', dir=model_dir) as private:
        downloaded = osp.join(private, osp.basename(cached_file))
        print_log(
            f'Downloading: "{url}" to {cached_file} (once it has loaded '
            f'weights-only)',
            logger='current')
        torch.hub.download_url_to_file(
            url, downloaded, hash_prefix, progress=progress)
        checkpoint = _load_downloaded(
            downloaded, map_location,
            f'{url} (downloaded, deleted again and not put into torch '
            f'hub\'s cache {model_dir})')
        os.replace(downloaded, cached_file)
    return checkpoint, cached_file


def load_from_http_safely(filename,
                          map_location=None,
                          model_dir=None,
                          progress=os.isatty(0),
                          check_hash=False):
    """Download a checkpoint like mmengine's ``load_from_http`` and load it
    with :func:`safe_torch_load` (schemes ``http://``, ``https://``).

    The file goes into torch hub's cache as with
    ``torch.hub.load_state_dict_from_url``, but only once it has loaded
    weights-only; a refused or damaged download is deleted, and a file
    already in the cache is loaded (checked) the same way. So nothing this
    loader refuses is left where mmengine's own loader, which unpickles
    fully, would find it (see :func:`_fetch_verified`). In distributed runs
    rank 0 downloads while the other ranks wait, then every rank loads the
    cached file; if rank 0 fails, the others raise too, with its reason.

    Args:
        filename (str): URL.
        map_location (optional): As in ``torch.load``.
        model_dir (str, optional): Cache directory. Defaults to
            ``torch.hub.get_dir()/checkpoints``.
        progress (bool): Whether to show a progress bar.
        check_hash (bool): As in ``torch.hub.load_state_dict_from_url``:
            check the file against the hash prefix in its name
            (``name-<sha256 prefix>.pth``) when downloading it.

    Returns:
        object: The loaded checkpoint.

    Raises:
        pickle.UnpicklingError, CheckpointFileError, TypeError,
            ValueError: See :func:`safe_torch_load`; the message names the
            URL and says whether the file was in the cache or is deleted.
        RuntimeError: On a rank other than 0, when rank 0 failed; the
            message gives rank 0's error.
    """
    rank, world_size = get_dist_info()
    if world_size == 1:
        return _fetch_verified(filename, model_dir, progress, check_hash,
                               map_location)[0]
    # Rank 0 downloads and checks; the others then load the cached file. If
    # rank 0 fails (no network, a refused file), every rank is told why
    # instead of waiting at a barrier for a file that will not come (or
    # failing on a peer gone away without a word).
    failure = [None]
    if rank == 0:
        try:
            checkpoint, _ = _fetch_verified(filename, model_dir, progress,
                                            check_hash, map_location)
        except Exception as error:
            failure = [f'{type(error).__name__}: {error}']
            torch.distributed.broadcast_object_list(failure, src=0)
            raise
    torch.distributed.broadcast_object_list(failure, src=0)
    if failure[0] is not None:
        raise RuntimeError(
            f'rank {rank}: rank 0 could not load checkpoint {filename}, so '
            f'this rank does not either. Rank 0 said: {failure[0]}')
    if rank > 0:
        checkpoint, _ = _fetch_verified(filename, model_dir, progress,
                                        check_hash, map_location)
    return checkpoint


def load_from_torchvision_safely(filename, map_location=None):
    """Resolve ``torchvision://NAME`` (or the deprecated ``modelzoo://``)
    with mmengine's list of torchvision URLs and load it with
    :func:`load_from_http_safely`.

    Raises:
        KeyError: If torchvision has no such model.
    """
    if filename.startswith('modelzoo://'):
        print_log(
            'The URL scheme of "modelzoo://" is deprecated, please use '
            '"torchvision://" instead',
            logger='current',
            level=logging.WARNING)
    model_name = filename.split('://', 1)[1]
    model_urls = mmengine_checkpoint.get_torchvision_models()
    return load_from_http_safely(
        model_urls[model_name], map_location=map_location)


def load_from_openmmlab_safely(filename, map_location=None):
    """Resolve ``open-mmlab://NAME`` (or ``openmmlab://``) as mmengine does
    (its model list, updated by ``$MMENGINE_HOME/open_mmlab.json``, and its
    renames of deprecated names) and load the URL with
    :func:`load_from_http_safely`, or a path relative to mmengine's home
    with :func:`load_from_local_safely`.

    Raises:
        KeyError: If the name is in no list.
        FileNotFoundError: If it names a local file that does not exist.
    """
    prefix, model_name = filename.split('://', 1)
    deprecated = mmengine_checkpoint.get_deprecated_model_names()
    if model_name in deprecated:
        print_log(
            f'{prefix}://{model_name} is deprecated in favor of '
            f'{prefix}://{deprecated[model_name]}',
            logger='current',
            level=logging.WARNING)
        model_name = deprecated[model_name]
    model_url = mmengine_checkpoint.get_external_models()[model_name]
    if model_url.startswith(('http://', 'https://')):
        return load_from_http_safely(model_url, map_location=map_location)
    return load_from_local_safely(
        osp.join(mmengine_checkpoint._get_mmengine_home(), model_url),
        map_location=map_location)


def load_from_mmcls_safely(filename, map_location=None):
    """Resolve ``mmcls://NAME`` with mmengine's list of mmcls URLs, load it
    with :func:`load_from_http_safely` and keep the backbone's weights, as
    mmengine's ``load_from_mmcls`` does.

    Raises:
        KeyError: If the name is not in the list.
    """
    model_urls = mmengine_checkpoint.get_mmcls_models()
    checkpoint = load_from_http_safely(
        model_urls[filename[len('mmcls://'):]], map_location=map_location)
    return mmengine_checkpoint._process_mmcls_checkpoint(checkpoint)


def load_from_ceph_safely(filename, map_location=None, backend='petrel'):
    """Read a checkpoint's bytes through mmengine's file backend (schemes
    ``s3://`` and ``petrel://``, optionally behind ``cluster:``) and load
    them with :func:`safe_torch_load`."""
    file_backend = fileio.get_file_backend(
        filename, backend_args={'backend': backend})
    with io.BytesIO(file_backend.get(filename)) as buffer:
        return safe_torch_load(
            buffer, map_location=map_location, source=filename)


def load_from_pavi_safely(filename, map_location=None):
    """Download a ``pavi://`` checkpoint with pavi's model cloud into a
    temporary directory, as mmengine does, and load it with
    :func:`safe_torch_load`.

    Raises:
        ImportError: If pavi is not installed.
    """
    try:
        from pavi import modelcloud
    except ImportError:
        raise ImportError(
            'Please install pavi to load checkpoint from modelcloud.')
    model = modelcloud.get(filename[len('pavi://'):])
    with tempfile.TemporaryDirectory() as tmp_dir:
        downloaded_file = osp.join(tmp_dir, model.name)
        model.download(downloaded_file)
        return safe_torch_load(
            downloaded_file, map_location=map_location, source=filename)


def refuse_unknown_mmengine_scheme(filename, map_location=None):
    """Stands in for a loader of mmengine's that sdt3_mm has no
    weights-only counterpart for (a scheme newer mmengine added): while
    safe loading is on, such a checkpoint is refused rather than loaded
    with ``weights_only=False``.

    Raises:
        pickle.UnpicklingError: Always; it names the checkpoint.
    """
    raise pickle.UnpicklingError(
        f'sdt3_mm has no weights-only loader for the scheme of checkpoint '
        f'{filename}; it refuses to load it with mmengine\'s loader, which '
        f'may run code in the file. Download the file and load it by path.')


def _mmengine_to_safe_loaders():
    """mmengine's loader of each scheme -> ours."""
    mm = mmengine_checkpoint
    return {
        mm.load_from_local: load_from_local_safely,
        mm.load_from_http: load_from_http_safely,
        mm.load_from_torchvision: load_from_torchvision_safely,
        mm.load_from_openmmlab: load_from_openmmlab_safely,
        mm.load_from_mmcls: load_from_mmcls_safely,
        mm.load_from_ceph: load_from_ceph_safely,
        mm.load_from_pavi: load_from_pavi_safely,
    }


_SAFE_LOADERS = (load_from_local_safely, load_from_http_safely,
                 load_from_torchvision_safely, load_from_openmmlab_safely,
                 load_from_mmcls_safely, load_from_ceph_safely,
                 load_from_pavi_safely, refuse_unknown_mmengine_scheme)


def _safe_counterpart(loader):
    """Our loader in place of ``loader``, or None if it is another
    plugin's (neither mmengine's nor ours)."""
    if loader in _SAFE_LOADERS:
        return loader
    safe = _mmengine_to_safe_loaders().get(loader)
    if safe is None and getattr(loader, '__module__',
                                None) == mmengine_checkpoint.__name__:
        return refuse_unknown_mmengine_scheme
    return safe


def _describe_loader(loader):
    name = getattr(loader, '__qualname__', None) or type(loader).__name__
    return f'{getattr(loader, "__module__", "?")}.{name}'


def _foreign_loader_error(scheme, loader):
    return RuntimeError(
        f"the loader of scheme {scheme!r} in mmengine's CheckpointLoader "
        f'is {_describe_loader(loader)}, neither mmengine\'s own nor '
        f"sdt3_mm's (another plugin registered it?); sdt3_mm will not "
        f'override it with its weights-only loader. Remove the other '
        f'loader, or drop sdt3_mm.SafeCheckpointLoadingHook / '
        f'safe_checkpoint_loading() and load checkpoints through that '
        f'loader.')


def safe_checkpoint_loader(filename):
    """The weights-only loader of ours for ``filename``'s scheme.

    The scheme is matched as ``CheckpointLoader`` matches it, whether safe
    loading is switched on or not, and nothing is registered: this is how
    sdt3_mm's own code loads checkpoints.

    Args:
        filename (str): Path or URL, with any scheme mmengine knows.

    Returns:
        callable: ``loader(filename, map_location)``.

    Raises:
        RuntimeError: If another plugin's loader is registered for the
            scheme; it is named.
    """
    loader = CheckpointLoader._get_checkpoint_loader(filename)
    if loader is None:  # no scheme matched, not even '': a local path
        return load_from_local_safely
    safe = _safe_counterpart(loader)
    if safe is None:
        scheme = next(p for p, registered in CheckpointLoader._schemes.items()
                      if registered is loader)
        raise _foreign_loader_error(scheme, loader)
    return safe


def enable_safe_checkpoint_loading():
    """Make mmengine load checkpoints of every scheme through
    :func:`safe_torch_load`.

    Each scheme registered in mmengine's ``CheckpointLoader`` gets our
    loader in place of mmengine's (see the module docstring); a scheme of
    mmengine's that sdt3_mm does not know gets
    :func:`refuse_unknown_mmengine_scheme`. ``Runner.load_checkpoint``
    (``load_from``, ``--resume``), ``test.py`` and ``Pretrained`` init all
    go through them until :func:`restore_checkpoint_loader` is given what
    this returns. Prefer :func:`safe_checkpoint_loading` or
    :class:`~.safe_loading_hook.SafeCheckpointLoadingHook`, which restore it.

    Returns:
        dict: Each scheme -> the loader that was in place (mmengine's own
        or, when already switched on, ours), for
        :func:`restore_checkpoint_loader`.

    Raises:
        RuntimeError: If any scheme holds a loader that is neither
            mmengine's nor ours (another plugin's); the scheme and the
            loader are named, and no scheme is changed.
    """
    previous = dict(CheckpointLoader._schemes)
    replacements = {}
    for scheme, loader in previous.items():
        replacements[scheme] = _safe_counterpart(loader)
        if replacements[scheme] is None:
            raise _foreign_loader_error(scheme, loader)
    for scheme, loader in replacements.items():
        if CheckpointLoader._schemes.get(scheme) is not loader:
            CheckpointLoader.register_scheme(
                prefixes=scheme, loader=loader, force=True)
    return previous


def restore_checkpoint_loader(previous):
    """Put back the loaders that :func:`enable_safe_checkpoint_loading`
    returned.

    Args:
        previous (dict): Scheme -> loader, as returned. Each of these
            schemes gets its loader back; schemes registered since by
            others are left as they are.

    Raises:
        TypeError: If ``previous`` is not such a dict (sdt3_mm before
            every scheme was covered returned a single loader).
    """
    if not isinstance(previous, dict):
        raise TypeError(
            f'restore_checkpoint_loader expects the dict of scheme -> '
            f'loader that enable_safe_checkpoint_loading returned, got '
            f'{previous!r}')
    for scheme, loader in previous.items():
        if CheckpointLoader._schemes.get(scheme) is not loader:
            CheckpointLoader.register_scheme(
                prefixes=scheme, loader=loader, force=True)


@contextlib.contextmanager
def safe_checkpoint_loading():
    """Within the block, mmengine loads checkpoints of every scheme (local
    paths, URLs, model-zoo names, storage backends; runner checkpoints
    included) through :func:`safe_torch_load`; on leaving it, the loaders
    that were in place before are restored. Blocks may nest.

    Example::

        with safe_checkpoint_loading():
            runner.train()  # load_from / resume / Pretrained init

    Raises:
        RuntimeError: If another plugin's loader is in place (see
            :func:`enable_safe_checkpoint_loading`).
    """
    previous = enable_safe_checkpoint_loading()
    try:
        yield
    finally:
        restore_checkpoint_loader(previous)
