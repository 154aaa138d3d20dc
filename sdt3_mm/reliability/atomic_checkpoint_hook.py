"""mmengine's CheckpointHook, with writes that a kill cannot lose."""
import errno
import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from sdt3_mm.registry import HOOKS
from . import checkpoint_files
from .checkpoint_content import tensor_bytes
from .checkpoint_files import (format_bytes, is_no_space_error,
                               remove_temp_files, replace_durably, temp_path,
                               write_atomic)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """A drop-in for mmengine's ``CheckpointHook`` (same arguments, same
    file names, same message hub records) after which a killed run always
    has a complete checkpoint to resume from.

    mmengine 0.10.7 removes the oldest checkpoint before it writes the new
    one, the previous best checkpoint before the new best, and writes each
    file in place: with ``max_keep_ckpts=1`` a kill during a save leaves no
    complete checkpoint at all. Use this hook instead with::

        default_hooks = dict(checkpoint=dict(
            type='sdt3_mm.AtomicCheckpointHook', interval=1,
            max_keep_ckpts=1))

    What it guarantees, for a local ``out_dir`` (the default, the work dir):

    - Every checkpoint (periodic and best) is assembled by
      ``runner.save_checkpoint`` as before (meta, optimizer, schedulers,
      message hub, ``before_save_checkpoint`` hooks), but into
      ``.<name>.partial.tmp`` in the same folder; that file is fsynced and
      renamed onto ``<name>`` (``os.replace``), and the folder fsynced. A
      file under a checkpoint's name is therefore always complete.
    - ``last_checkpoint`` is replaced the same way, after the checkpoint
      it names is in place.
    - Checkpoints beyond ``max_keep_ckpts`` are removed only after that. A
      kill between the two leaves one checkpoint too many; the new
      checkpoint lists it in the message hub's ``keep_ckpt_ids``, so
      ``before_train`` of a run resumed from it removes it.
    - The previous best checkpoint is removed only after the new best one
      and the periodic checkpoint recording it are in place: a kill leaves
      at least one best checkpoint (at worst two).
    - Temp files left by a killed run are removed in ``before_train``; a
      save that raises removes its own.

    What it needs on disk: since an old checkpoint is removed only once its
    successor is complete, a run keeping ``max_keep_ckpts=k`` checkpoints
    holds ``k + 1`` of them during each save (two with
    ``max_keep_ckpts=1``), and with ``save_best`` two best checkpoints
    (model only) while one replaces the other. Before the first save the
    hook estimates a checkpoint's size from the tensors of the model's and
    the optimizer's state (:func:`~.checkpoint_content.tensor_bytes`, a lower
    bound: the demo classifier's 31.0 MB of tensors make a 31.6 MB file)
    and, if the free space of ``out_dir`` is short of that, logs a warning
    naming the folder, what is free and what the run will need. Before
    every save, a checkpoint that cannot fit in what is free is refused
    with ``OSError(ENOSPC)`` before anything is written, and a save that
    fails for lack of space (``ENOSPC`` or ``EDQUOT``) raises
    ``OSError(ENOSPC)`` naming the file, what is free and what a save
    needs; the checkpoints already there are untouched.

    For a remote ``out_dir`` (a storage backend through ``backend_args``,
    ``file_client_args`` or a URL) nothing is atomic here: each checkpoint
    is written under its final name by the backend first, and the old ones
    are removed after, so a kill never removes a checkpoint before its
    successor is stored; whether a partly uploaded object can be seen
    depends on the store. ``last_checkpoint`` is local (in the work dir)
    and atomic either way.

    With mmengine's ``FlexibleRunner`` (whose strategies may write a
    checkpoint folder from every rank) the same save-first, remove-after
    order holds, without temp files. Not covered: the published copies of
    ``published_keys``, which mmengine writes in place at the end of
    training from a complete checkpoint. Only the main process writes
    (``Runner.save_checkpoint`` is master-only), and only one run may write
    into an ``out_dir`` at a time.

    Args:
        See :class:`mmengine.hooks.CheckpointHook`.
    """

    def before_train(self, runner):
        super().before_train(runner)
        self._space_checked = False
        # mmengine's own backends for local paths; anything else is remote.
        backend = getattr(self.file_backend, 'client', self.file_backend)
        # Runner.save_checkpoint writes one file, from the main process;
        # FlexibleRunner's strategies may write folders from every rank.
        self._atomic = (
            isinstance(backend, LocalBackend) and isinstance(runner, Runner))
        if self._atomic and is_main_process():
            folders = {self.out_dir, runner.work_dir}
            for folder in sorted(folders):
                for path in remove_temp_files(folder):
                    runner.logger.info(
                        f'Removed {path}, a checkpoint write that a killed '
                        'run left unfinished.')

    def _save_checkpoint_with_step(self, runner, step, meta):
        """mmengine's method, in the order write, record, then remove."""
        stale = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            # (The same step twice: a best checkpoint's re-save.) The new
            # checkpoint records the ids on disk while it is written, the
            # stale ones included, so that a run resumed from it after a
            # kill before their removal removes them in before_train.
            on_disk = list(self.keep_ckpt_ids) + [step]
            stale = on_disk[:-self.max_keep_ckpts]
            runner.message_hub.update_info('keep_ckpt_ids', on_disk)
            self.keep_ckpt_ids.append(step)  # maxlen drops the stale ones

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                     ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        self._write_checkpoint(
            runner,
            ckpt_filename,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            **self.args)
        if stale:
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))

        # Model parallel-like training should involve pulling sharded states
        # from all ranks, but skip the following procedure (as mmengine).
        if not is_main_process():
            return
        write_atomic(
            osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        for old in stale:
            self._remove(
                self.file_backend.join_path(self.out_dir,
                                            self.filename_tmpl.format(old)))

    def _save_best_checkpoint(self, runner, metrics):
        """mmengine's method, removing each previous best checkpoint only
        once the new one and the periodic checkpoint recording it are
        saved."""
        if not self.save_best:
            return

        if self.by_epoch:
            ckpt_filename = self.filename_tmpl.format(runner.epoch)
            cur_type, cur_time = 'epoch', runner.epoch
        else:
            ckpt_filename = self.filename_tmpl.format(runner.iter)
            cur_type, cur_time = 'iter', runner.iter
        meta = dict(epoch=runner.epoch, iter=runner.iter)

        if 'auto' in self.key_indicators:
            self._init_rule(self.rules, [list(metrics.keys())[0]])

        best_ckpt_updated = False
        replaced = []
        for key_indicator, rule in zip(self.key_indicators, self.rules):
            key_score = metrics[key_indicator]
            if len(self.key_indicators) == 1:
                best_score_key = 'best_score'
                runtime_best_ckpt_key = 'best_ckpt'
                previous = self.best_ckpt_path
            else:
                best_score_key = f'best_score_{key_indicator}'
                runtime_best_ckpt_key = f'best_ckpt_{key_indicator}'
                previous = self.best_ckpt_path_dict[key_indicator]

            if best_score_key not in runner.message_hub.runtime_info:
                best_score = self.init_value_map[rule]
            else:
                best_score = runner.message_hub.get_info(best_score_key)
            if key_score is None or not self.is_better_than[key_indicator](
                    key_score, best_score):
                continue

            best_ckpt_updated = True
            best_score = key_score
            runner.message_hub.update_info(best_score_key, best_score)
            # Replace illegal characters for filename with `_`
            best_ckpt_name = f'best_{key_indicator}_{ckpt_filename}'.replace(
                '/', '_')
            best_ckpt_path = self.file_backend.join_path(
                self.out_dir, best_ckpt_name)
            if len(self.key_indicators) == 1:
                self.best_ckpt_path = best_ckpt_path
            else:
                self.best_ckpt_path_dict[key_indicator] = best_ckpt_path
            runner.message_hub.update_info(runtime_best_ckpt_key,
                                           best_ckpt_path)
            self._write_checkpoint(
                runner,
                best_ckpt_name,
                save_optimizer=False,
                save_param_scheduler=False,
                meta=meta,
                by_epoch=False)
            runner.logger.info(
                f'The best checkpoint with {best_score:0.4f} {key_indicator} '
                f'at {cur_time} {cur_type} is saved to {best_ckpt_name}.')
            if previous and previous != best_ckpt_path:
                replaced.append(previous)

        # As mmengine: save the periodic checkpoint again, so that the one a
        # run resumes from knows the new best checkpoint (and removes it
        # when a better one comes).
        if best_ckpt_updated and self.last_ckpt is not None:
            self._save_checkpoint_with_step(runner, cur_time, meta)
        if is_main_process():
            for path in replaced:
                if self._remove(path):
                    runner.logger.info(
                        f'The previous best checkpoint {path} is removed')

    def _write_checkpoint(self, runner, filename, **kwargs):
        """``runner.save_checkpoint`` into ``self.out_dir/filename``, through
        a temp file for a local ``out_dir`` and a :class:`Runner` (see the
        class docstring)."""
        if not self._atomic:
            try:
                runner.save_checkpoint(
                    self.out_dir,
                    filename,
                    self.file_client_args,
                    backend_args=self.backend_args,
                    **kwargs)
            except OSError as error:
                if is_no_space_error(error):
                    path = self.file_backend.join_path(self.out_dir, filename)
                    raise OSError(
                        errno.ENOSPC, f'no space left to write checkpoint '
                        f'{path}: ' + self._space_needs(None)) from error
                raise
            return
        path = osp.join(self.out_dir, filename)
        tmp = temp_path(path)
        size = None
        if is_main_process():
            size = self._check_space(runner, path, kwargs['save_optimizer'])
        try:
            runner.save_checkpoint(
                self.out_dir,
                osp.basename(tmp),
                self.file_client_args,
                backend_args=self.backend_args,
                **kwargs)
            if is_main_process():
                replace_durably(tmp, path)
        except BaseException as error:
            if is_main_process() and osp.isfile(tmp):
                os.remove(tmp)
            if is_no_space_error(error):
                raise OSError(
                    errno.ENOSPC,
                    f'no space left to write checkpoint {path} (through '
                    f'{tmp}, now removed): ' + self._space_needs(size) +
                    f'. The checkpoints already in {self.out_dir} are '
                    f'untouched; free some space and resume.') from error
            raise

    def _checkpoint_size(self, runner, save_optimizer):
        """A lower bound of the size of the checkpoint to save: the bytes
        of the model's state dict and, when saved, the optimizer's."""
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        states = [model.state_dict()]
        if save_optimizer and getattr(runner, 'optim_wrapper', None):
            states.append(runner.optim_wrapper.state_dict())
        return tensor_bytes(states)

    def _space_needs(self, size):
        """What a save needs, in words (``size``: the checkpoint's
        estimated bytes, or None)."""
        about = f'about {format_bytes(size)}' if size else 'its size'
        if self.max_keep_ckpts > 0:
            return (f'a save needs room for the new checkpoint ({about}) '
                    f'beside the {self.max_keep_ckpts} kept one(s): with '
                    f'max_keep_ckpts={self.max_keep_ckpts} an old '
                    f'checkpoint is removed only after the new one is '
                    f'complete, so the run needs '
                    f'{self.max_keep_ckpts + 1} checkpoints\' room')
        return (f'a save needs room for the new checkpoint ({about}); this '
                f'run keeps every checkpoint (max_keep_ckpts='
                f'{self.max_keep_ckpts})')

    def _check_space(self, runner, path, save_optimizer):
        """Refuse a save that cannot fit in the free space of ``out_dir``;
        before the first save, warn when the run as configured will not
        fit (see the class docstring).

        Returns:
            int: The checkpoint's estimated size.

        Raises:
            OSError: ``ENOSPC``, naming ``path``, when the free space is
                less than the checkpoint's estimated size.
        """
        size = self._checkpoint_size(runner, save_optimizer)
        free = checkpoint_files.free_bytes(self.out_dir)
        if free < size:
            raise OSError(
                errno.ENOSPC, f'not enough space to write checkpoint {path}: '
                f'{format_bytes(free)} free in {self.out_dir}, and ' +
                self._space_needs(size) + '. Nothing was written; the '
                f'checkpoints already there are untouched.')
        if self._space_checked:
            return size
        self._space_checked = True
        if not save_optimizer:
            return size  # a best checkpoint first; judged by a periodic one
        if self.max_keep_ckpts > 0:
            # The checkpoints a resumed run keeps take their room already.
            on_disk = runner.message_hub.get_info('keep_ckpt_ids') or []
            kept = [
                osp.join(self.out_dir, self.filename_tmpl.format(step))
                for step in on_disk
            ]
            kept = [k for k in kept if k != path and osp.isfile(k)]
            needed = size * (self.max_keep_ckpts + 1) - sum(
                osp.getsize(k) for k in kept[-self.max_keep_ckpts:])
        else:
            needed = size
        best = ''
        if self.save_best:
            model_only = self._checkpoint_size(runner, False)
            needed += 2 * model_only
            best = (f', plus two best checkpoints (about '
                    f'{format_bytes(model_only)} each) while one replaces '
                    f'the other')
        if free < needed:
            runner.logger.warning(
                f'{format_bytes(free)} free in {self.out_dir}, but the run '
                f'will need about {format_bytes(needed)} there: ' +
                self._space_needs(size) + best + '. A save that does not '
                'fit will stop the run with an error naming the file.')
        return size

    def _remove(self, path):
        """Remove the checkpoint ``path`` (a file, or a DeepSpeed folder) if
        it is there; return whether it was."""
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):
            self.file_backend.rmtree(path)
        else:
            return False
        return True
