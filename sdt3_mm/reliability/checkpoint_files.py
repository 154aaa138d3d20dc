"""Checkpoint files on a local disk: written atomically, checked without
loading, and found again for ``--resume``.

One check of a file's bytes, :func:`checkpoint_file_defect`, serves both
readers: loading (:func:`~sdt3_mm.reliability.safe_torch_load`) reads
every zip record through its CRC-32, and accepts torch's legacy (pre-1.6)
format; the resume search (:func:`checkpoint_defect`,
:func:`find_resumable_checkpoint`) reads only the zip central directory,
which torch writes last: a write cut short (a killed process, a full disk)
leaves none, so truncation is caught without reading the tensors. A checkpoint counts as *complete* when it is a
torch zip archive (the format ``torch.save`` has written since torch 1.6)
whose directory can be read and lists a ``data.pkl`` record.

Files being written are named ``.<name>.partial.tmp`` (see
:func:`temp_path`): a leading dot and a ``.tmp`` suffix, so that neither
:func:`find_resumable_checkpoint` nor any ``*.pth`` glob mistakes them for
checkpoints. :func:`write_atomic` is the one way a whole file is written.
"""
import errno
import os
import os.path as osp
import re
import shutil
import zipfile
import zlib

from mmengine.logging import print_log

# mmengine CheckpointHook's default names; other ``filename_tmpl`` names are
# only found through ``last_checkpoint``.
_CHECKPOINT_NAME = re.compile(r'^(epoch|iter)_(\d+)\.pth$')
_TEMP_PREFIX = '.'
_TEMP_SUFFIX = '.partial.tmp'
# torch's zip format (since 1.6) and the magic number that the legacy
# format pickles first (after the pickle protocol's few opening bytes).
_ZIP_MAGIC = b'PK\x03\x04'
_LEGACY_MAGIC = b'\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19'


def temp_path(path):
    """The name under which ``path`` is written before it is complete.

    Args:
        path (str): The final path.

    Returns:
        str: ``<folder of path>/.<name>.partial.tmp``: in the same folder
        (so that ``os.replace`` onto ``path`` is a rename within one file
        system), hidden, and not ending in ``.pth``.
    """
    folder, name = osp.split(path)
    return osp.join(folder, _TEMP_PREFIX + name + _TEMP_SUFFIX)


def is_temp_file(name):
    """Whether ``name`` (a base name) is one of :func:`temp_path`'s."""
    return (name.startswith(_TEMP_PREFIX) and name.endswith(_TEMP_SUFFIX)
            and len(name) > len(_TEMP_PREFIX) + len(_TEMP_SUFFIX))


def remove_temp_files(folder):
    """Remove the files :func:`temp_path` names in ``folder``.

    They are what a process killed while writing left behind. Only one run
    may write into ``folder`` at a time: a temp file of another live run
    would be removed too.

    Args:
        folder (str): A local folder; a missing one holds nothing.

    Returns:
        list[str]: The paths removed.
    """
    if not osp.isdir(folder):
        return []
    removed = []
    for name in sorted(os.listdir(folder)):
        path = osp.join(folder, name)
        if is_temp_file(name) and osp.isfile(path):
            os.remove(path)
            removed.append(path)
    return removed


def _fsync_folder(folder):
    # A rename is on disk only once the folder's entry is; without this a
    # power loss right after os.replace may bring back the old name.
    try:
        fd = os.open(folder or os.curdir, os.O_RDONLY)
    except OSError:
        return  # e.g. Windows cannot open a folder; its rename is durable.
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder
    finally:
        os.close(fd)


def replace_durably(src, dst):
    """Put the complete file ``src`` in place of ``dst`` in one step.

    ``src`` is fsynced, renamed onto ``dst`` with ``os.replace`` (atomic
    within one file system: a reader, or a process started after a kill,
    sees either the old ``dst`` or the new one, never a mix), and the
    folder is fsynced.

    Args:
        src (str): A complete file, closed, in the folder of ``dst``.
        dst (str): The final path; an existing file is replaced.
    """
    with open(src, 'rb+') as f:
        os.fsync(f.fileno())
    os.replace(src, dst)
    _fsync_folder(osp.dirname(dst))


def write_atomic(path, data):
    """Write ``data`` to ``path`` through :func:`temp_path` and
    :func:`replace_durably`: ``path`` holds the old content or the new one
    whenever the process is killed, never a part.

    Args:
        path (str): A local file.
        data (str | bytes): Its new content (text is written as UTF-8).

    Raises:
        OSError: ``ENOSPC`` naming ``path`` when the disk (or the quota) is
            full; ``path`` keeps its old content and the temp file is
            removed.
    """
    tmp = temp_path(path)
    try:
        with open(tmp, 'wb') as f:
            f.write(data.encode() if isinstance(data, str) else data)
        replace_durably(tmp, path)
    except OSError as error:
        if osp.isfile(tmp):
            os.remove(tmp)
        if is_no_space_error(error):
            raise OSError(
                errno.ENOSPC, f'no space left to write {path} ('
                f'{format_bytes(free_bytes(osp.dirname(path) or "."))} '
                f'free); it keeps its old content') from error
        raise


def free_bytes(folder):
    """Bytes free for this user on the file system of ``folder``."""
    return shutil.disk_usage(folder).free


def format_bytes(size):
    """``size`` in bytes, kB, MB or GB, as ``df -H`` counts (powers of
    1000)."""
    for unit, scale in (('GB', 1e9), ('MB', 1e6), ('kB', 1e3)):
        if size >= scale:
            return f'{size / scale:.{2 if unit == "GB" else 1}f} {unit}'
    return f'{size} bytes'


def is_no_space_error(error):
    """Whether ``error`` says the disk (or the user's quota) is full."""
    return isinstance(error,
                      OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


def checkpoint_file_defect(f, verify_records=True, allow_legacy=True):
    """Why the bytes of ``f`` are not a whole PyTorch checkpoint, if so.

    For torch's zip format, the central directory is read and, with
    ``verify_records``, every record is read through with its CRC-32
    checked (``ZipFile.testzip``): torch's own zip reader checks no CRC,
    so bytes zeroed or flipped inside a weight would load as other
    weights. That is one read of the file; without ``verify_records`` only
    the directory is read. A legacy (pre-1.6) file has no checksums and no
    directory; only its magic number is checked.

    Args:
        f (str | os.PathLike | file-like): A path, or a seekable binary
            file object (read from its current position, which is then
            restored).
        verify_records (bool): Read every zip record through its CRC.
            Defaults to True.
        allow_legacy (bool): Take torch's legacy format as whole (whether
            it is cannot be told). Defaults to True.

    Returns:
        str | None: None for a sound file, else a reason that reads after
        "it is": ``'empty (0 bytes)'``,
        ``'truncated or damaged: ...'`` (no readable zip directory),
        ``'damaged: ...'`` (a record failing its CRC check), ``'a zip
        archive, but no PyTorch file (no data.pkl)'``, ``'in torch's
        legacy format ...'`` (with ``allow_legacy=False``) or ``'not a
        PyTorch file ...'``.

    Raises:
        OSError: If the path cannot be opened (``FileNotFoundError`` for a
            missing one).
    """
    if isinstance(f, (str, os.PathLike)):
        with open(f, 'rb') as opened:
            return checkpoint_file_defect(opened, verify_records, allow_legacy)
    start = f.tell()
    try:
        head = f.read(64)
        if not head:
            return 'empty (0 bytes)'
        if head.startswith(_ZIP_MAGIC):
            f.seek(start)
            try:
                with zipfile.ZipFile(f) as archive:
                    names = archive.namelist()
                    damaged = archive.testzip() if verify_records else None
            except zipfile.BadZipFile as error:
                return (f'truncated or damaged: its zip directory cannot '
                        f'be read ({error})')
            except (zlib.error, EOFError, ValueError) as error:
                return f'damaged: a zip record cannot be read ({error})'
            if damaged is not None:
                return (f'damaged: its record {damaged} fails its CRC '
                        f'check (bytes changed since it was written)')
            if not any(name.endswith('data.pkl') for name in names):
                return 'a zip archive, but no PyTorch file (no data.pkl)'
            return None
        if _LEGACY_MAGIC in head:
            return None if allow_legacy else (
                'in torch\'s legacy (pre-1.6) format, whose completeness '
                'cannot be checked')
        return ('not a PyTorch file (neither a zip archive nor torch\'s '
                'legacy format)')
    finally:
        f.seek(start)


def checkpoint_defect(path):
    """Why ``path`` is not a complete checkpoint to resume from, if so.

    :func:`checkpoint_file_defect` without reading the records (the zip
    directory only: no unpickling, no tensors) and refusing the legacy
    format, which ``torch.save`` has not written since torch 1.6.

    Args:
        path (str): A local path.

    Returns:
        str | None: None for a complete checkpoint; otherwise a reason
        that reads after "which is": ``'missing'``, one of
        :func:`checkpoint_file_defect`, or ``'unreadable (...)'``.
    """
    if not osp.isfile(path):
        return 'missing'
    try:
        return checkpoint_file_defect(
            path, verify_records=False, allow_legacy=False)
    except OSError as error:
        return f'unreadable ({error})'


def is_complete_checkpoint(path):
    """Whether ``path`` is a complete checkpoint (see
    :func:`checkpoint_defect`)."""
    return checkpoint_defect(path) is None


def _checkpoints_in(folders):
    """Files named ``epoch_N.pth`` / ``iter_N.pth`` in ``folders``, each
    once, as ``(kind, N, mtime, path)``."""
    found, seen = [], set()
    for folder in folders:
        if not osp.isdir(folder):
            continue
        for name in os.listdir(folder):
            match = _CHECKPOINT_NAME.match(name)
            path = osp.join(folder, name)
            if match is None or not osp.isfile(path):
                continue
            real = osp.realpath(path)
            if real in seen:
                continue
            seen.add(real)
            found.append((match.group(1), int(match.group(2)),
                          osp.getmtime(path), path))
    return found


def newest_epoch_checkpoint(folder):
    """The ``epoch_N.pth`` of largest ``N`` in ``folder``, complete or not,
    or None if there is none."""
    epochs = [(n, path) for kind, n, _, path in _checkpoints_in([folder])
              if kind == 'epoch']
    return max(epochs)[1] if epochs else None


def _newest_first(checkpoints):
    """Order ``(kind, N, mtime, path)`` tuples newest first.

    ``N`` is the run's progress (epochs in ``epoch_N``, iterations in
    ``iter_N``), which is what decides within one kind; the mtime only
    breaks ties (the same name in two folders). Epochs and iterations
    cannot be compared, so when both kinds are present the most recently
    written file comes first, ``N`` breaking ties.
    """
    if len({kind for kind, _, _, _ in checkpoints}) > 1:
        key = (lambda item: (item[2], item[1]))
    else:
        key = (lambda item: (item[1], item[2]))
    return sorted(checkpoints, key=key, reverse=True)


def find_resumable_checkpoint(work_dir, logger=None):
    """The checkpoint a run in ``work_dir`` should resume from.

    1. The file named in ``work_dir/last_checkpoint`` (the newest
       checkpoint mmengine's CheckpointHook saved; a relative name is taken
       relative to the current folder, as mmengine's runner does) if it is
       complete.
    2. Otherwise (no ``last_checkpoint``, an empty one, or one naming a
       missing or incomplete file) the newest complete ``epoch_N.pth`` or
       ``iter_N.pth`` in ``work_dir`` and in the folder ``last_checkpoint``
       names, if any. Newest means the largest ``N``; when both kinds are
       there, the most recently modified file (see :func:`_newest_first`).
       Incomplete files and temp files (:func:`temp_path`) are skipped.

    A ``last_checkpoint`` naming a remote file (``scheme://...``) is
    returned as it is: it cannot be checked here.

    Args:
        work_dir (str): The run's work dir.
        logger (logging.Logger | str, optional): Where to say which file
            was taken and why, as in :func:`mmengine.logging.print_log`:
            None prints, ``'current'`` uses the current MMLogger,
            ``'silent'`` says nothing. Defaults to None.

    Returns:
        str | None: The checkpoint's path, or None if there is no complete
        checkpoint to resume from.
    """
    marker = osp.join(work_dir, 'last_checkpoint')
    folders, named = [work_dir], None
    if not osp.isfile(marker):
        why = f'No last_checkpoint in {work_dir}'
    else:
        with open(marker) as f:
            named = f.read().strip()
        if not named:
            why = f'{marker} is empty'
        elif '://' in named:
            print_log(
                f'Resuming from {named}, named in {marker} (a remote file, '
                f'not checked here).',
                logger=logger)
            return named
        else:
            defect = checkpoint_defect(named)
            if defect is None:
                print_log(
                    f'Resuming from {named}, the checkpoint named in '
                    f'{marker}.',
                    logger=logger)
                return named
            why = f'{marker} points at {named}, which is {defect}'
            folder = osp.dirname(named)
            if folder and osp.realpath(folder) != osp.realpath(work_dir):
                folders.append(folder)
    skipped = []
    for _, _, _, path in _newest_first(_checkpoints_in(folders)):
        defect = checkpoint_defect(path)
        if defect is None:
            also = f' (skipped {"; ".join(skipped)})' if skipped else ''
            print_log(
                f'{why}; resuming from the newest complete checkpoint '
                f'{path}{also}.',
                logger=logger)
            return path
        # The file last_checkpoint names is in `why` already.
        if not named or osp.realpath(path) != osp.realpath(named):
            skipped.append(f'{osp.basename(path)}: {defect}')
    also = f' (skipped {"; ".join(skipped)})' if skipped else ''
    print_log(
        f'{why}, and there is no complete epoch_N.pth or iter_N.pth in '
        f'{" or ".join(folders)}{also}: nothing to resume from.',
        logger=logger)
    return None
