"""An epoch-based training loop that resumes inside an epoch, and a check
that refuses the resume mmengine's own loop cannot do exactly."""
import inspect
import os.path as osp
import time

from mmengine.logging import print_log
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.runner import EpochBasedTrainLoop as _MMEngineEpochLoop
from mmengine.runner import find_latest_checkpoint

from sdt3_mm.registry import LOOPS
from .checkpoint_files import newest_epoch_checkpoint
from .safe_loading import safe_torch_load


def _saved_iters_per_epoch(get_info):
    """Iterations per epoch of the run that saved a checkpoint.

    mmengine's ``RuntimeInfoHook`` records ``max_iters`` and ``max_epochs``
    of the run in the message hub, which every runner checkpoint stores;
    their quotient is the train dataloader's length at the time.

    Args:
        get_info (Callable[[str], Any]): Reads a runtime-info key of the
            saved message hub, None where it is absent.

    Returns:
        int | None: Batches per epoch, or None if the message hub lacks
        them (a run without ``RuntimeInfoHook``).
    """
    max_iters, max_epochs = get_info('max_iters'), get_info('max_epochs')
    if not max_iters or not max_epochs or max_iters % max_epochs:
        return None
    return max_iters // max_epochs


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(_MMEngineEpochLoop):
    """mmengine's ``EpochBasedTrainLoop`` that, resumed from a checkpoint
    taken inside an epoch, trains only that epoch's remaining batches.

    A drop-in with the same arguments::

        train_cfg = dict(
            type='sdt3_mm.ResumableEpochBasedTrainLoop',
            max_epochs=..., val_interval=...)

    (no ``by_epoch``: mmengine's runner refuses ``type`` together with
    it). An iteration checkpoint (``CheckpointHook(by_epoch=False)``)
    saved after ``i`` iterations in all, inside epoch ``e`` (0-based),
    records ``epoch=e`` and ``iter=i``; mmengine's loop would train all of
    epoch ``e`` again and end ``i - e * len(dataloader)`` iterations past
    ``max_iters``. This loop instead starts epoch ``e`` as usual (its
    ``before_train_epoch`` hooks run, so ``DistSamplerSeedHook`` seeds the
    sampler with ``seed + e``), draws the first ``i - e * len(dataloader)``
    batches from the dataloader without training on them or calling any
    hook, and trains the rest with their true batch indices, so the log
    reads ``Epoch(train) [e + 1][k/len]`` and the run ends at
    ``max_iters``. A checkpoint taken at an epoch's last iteration (all
    batches trained, its ``after_train_epoch`` not yet run) draws nothing
    and goes straight to ``after_train_epoch``. A checkpoint taken at an
    epoch's end, or a fresh run, behaves exactly as mmengine's loop.

    What is exact: the resumed run ends with the same weights, bit for bit,
    as a run never interrupted (``tests/test_reliability/
    test_mid_epoch_resume.py``), provided that

    - ``randomness.seed`` is set (the same as the checkpoint's): with no
      seed, mmengine builds the dataloader with a new random one before it
      restores the checkpoint's, so the data order differs;
    - the dataloader has ``num_workers > 0`` and
      ``persistent_workers=False`` when the pipeline is random. mmengine
      seeds each worker from the run's seed when it starts, so fresh
      workers make the same random draws in every epoch, run or resume;
      drawing the skipped batches through them (rather than skipping
      indices in the sampler) advances each worker's generators exactly as
      the uninterrupted run did. Persistent workers carry their generators
      over from earlier epochs, and ``num_workers=0`` draws from the main
      process's generators; neither is saved in a checkpoint;
    - training itself draws no random numbers in the main process
      (drop path, dropout, Mixup/CutMix in the data preprocessor...):
      mmengine saves no generator states, so these differ after any resume,
      at an epoch's end as well;
    - with gradient accumulation, the checkpoint's iteration is a multiple
      of ``accumulative_counts`` (accumulated gradients are not saved;
      mmengine warns);
    - the train dataloader has the same length as when the checkpoint was
      saved (same data set, batch size and number of processes); otherwise
      the trained batches cannot be told apart and :meth:`run` raises;
    - ``randomness.deterministic=True`` where kernels are otherwise not
      reproducible (as for any two runs to agree).

    What it costs: the skipped batches are loaded, transformed and collated
    once more, without the forward and backward pass; with ``k`` batches
    skipped that is about ``k`` times the data time of one batch divided
    by the number of workers, spent once after the resume. On the demo
    config (``configs/demo/e-spikeformer-t_shapes-cls.py``: 64 x 64
    images, batch 64, one worker; one torch thread on 2 shared CPU cores)
    a drawn batch took 0.09 s against 3.8 s for a training step, so
    skipping most of an epoch cost about 2 % of training it. The time is
    logged, and it counts in the ``time`` and ``data_time`` of the first
    trained iteration (the ``IterTimerHook`` clock starts at
    ``before_train_epoch``).

    Hooks whose ``before_train_epoch`` keeps state see it twice for the
    resumed epoch (once before the checkpoint, once after the resume), as
    with mmengine's iteration-based resume.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The train dataloader or its config.
        max_epochs (int): Total training epochs.
        val_begin (int): The epoch that begins validating. Defaults to 1.
        val_interval (int): Validation interval. Defaults to 1.
        dynamic_intervals (list[tuple[int, int]], optional): Milestones and
            the validation intervals after them. Defaults to None.
    """

    # Batches of the current epoch trained before the checkpoint; set by
    # run() after the resume, used up by the first run_epoch().
    _batches_to_skip = 0

    def run(self):
        """Launch training; after a mid-epoch resume, the current epoch
        starts at its first untrained batch.

        Returns:
            nn.Module: The trained model.

        Raises:
            RuntimeError: If the resumed iteration does not fall in the
                resumed epoch: the checkpoint's iteration lies outside the
                epoch's range for this dataloader's length, or the
                dataloader's length differs from that of the run that saved
                the checkpoint (both numbers are named).
        """
        # Runner.resume has set _epoch and _iter and restored the saved
        # message hub; the 'before_train' hooks overwrite its max_iters with
        # this run's, so the saved run's epoch length is read here.
        self._batches_to_skip = self._batches_trained_in_epoch()
        return super().run()

    def _batches_trained_in_epoch(self):
        """Batches of epoch ``self._epoch`` that the checkpoint has trained.

        Returns:
            int: In ``0..len(self.dataloader)``; 0 after an epoch's end.
        """
        length = len(self.dataloader)
        saved_length = _saved_iters_per_epoch(self.runner.message_hub.get_info)
        trained = self._iter - self._epoch * (saved_length or length)
        if trained == 0:
            return 0
        epoch = self._epoch + 1
        if saved_length is not None and saved_length != length:
            raise RuntimeError(
                f'Cannot resume inside epoch {epoch}: the checkpoint was '
                f'taken after {trained} of its {saved_length} batches '
                f'(iteration {self._iter}), but the train dataloader now '
                f'has {length} batches per epoch (batch size, data set or '
                f'number of processes changed), so the batches already '
                f'trained cannot be told apart. Resume from an epoch '
                f'checkpoint instead.')
        if not 0 < trained <= length:
            raise RuntimeError(
                f'Cannot resume inside epoch {epoch}: the checkpoint\'s '
                f'iteration {self._iter} is outside that epoch, which with '
                f'{length} batches per epoch spans iterations '
                f'{self._epoch * length}..{epoch * length} (did the batch '
                f'size or the data set change since?).')
        return trained

    def run_epoch(self):
        """Iterate one epoch, or its untrained rest after a resume."""
        skip, self._batches_to_skip = self._batches_to_skip, 0
        if not skip:
            return super().run_epoch()
        # As mmengine's run_epoch: the hooks (DistSamplerSeedHook among
        # them) prepare the epoch before the dataloader is iterated.
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        length = len(self.dataloader)
        # After an epoch's last iteration there is nothing to train, and
        # the next epoch's workers start afresh whatever is drawn here.
        if skip < length:
            start = time.perf_counter()
            batches = enumerate(self.dataloader)
            # Drawn, not skipped in the sampler: the workers' random
            # augmentations advance as in the uninterrupted run.
            for _ in range(skip):
                next(batches)
            print_log(
                f'Resumed inside epoch {self._epoch + 1}: drew its first '
                f'{skip} of {length} batches, trained before the '
                f'checkpoint, without training in '
                f'{time.perf_counter() - start:.2f} s.',
                logger='current')
            for idx, data_batch in batches:
                self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1


def _builds_mmengine_epoch_loop(cfg):
    """Whether the config's train loop iterates epochs with mmengine's
    ``EpochBasedTrainLoop.run_epoch`` (the loop itself or a subclass that
    keeps it), resolving ``train_cfg.type`` as the runner will.

    Args:
        cfg (Config | dict): The config.

    Returns:
        bool: True for such a loop; False for any other, and for a type the
        registry cannot resolve (the runner reports it).
    """
    train_cfg = cfg.get('train_cfg') or {}
    loop_type = train_cfg.get('type')
    if loop_type is None:
        return bool(train_cfg.get('by_epoch', False))
    if inspect.isclass(loop_type):
        loop_cls = loop_type
    else:
        with MMENGINE_LOOPS.switch_scope_and_registry(
                cfg.get('default_scope')) as registry:
            loop_cls = registry.get(loop_type)
    return (inspect.isclass(loop_cls)
            and issubclass(loop_cls, _MMEngineEpochLoop)
            and loop_cls.run_epoch is _MMEngineEpochLoop.run_epoch)


def check_mid_epoch_resume(cfg, checkpoint=None):
    """Refuse to resume mmengine's ``EpochBasedTrainLoop`` from a checkpoint
    taken inside an epoch.

    mmengine's loop restarts the checkpoint's unfinished epoch from its
    first batch: the batches trained before the checkpoint are trained
    again and the run ends past its configured iterations. Call this
    before building the runner whenever it resumes; it loads the
    checkpoint once more (on the CPU, weights-only) to read its meta.

    A checkpoint was taken inside an epoch when its ``meta['iter']`` is
    not ``meta['epoch']`` times the saved run's batches per epoch
    (``max_iters // max_epochs`` from its message hub): an epoch
    checkpoint records the epochs completed and all their iterations; an
    iteration checkpoint records the unfinished epoch and at least one
    iteration of it (all of them at its last iteration, before
    ``after_train_epoch`` ran). Without those message-hub entries, the
    iteration not being a multiple of the epoch (any iteration past epoch
    0) is taken as the sign, which misses a mid-epoch checkpoint whose
    iteration happens to be one.

    Args:
        cfg (Config | dict): The config the runner will be built from,
            after the command line has set ``resume`` and ``load_from``.
        checkpoint (str | dict, optional): The checkpoint file, or a
            loaded checkpoint (its ``meta`` and ``message_hub`` are read).
            Defaults to None: the one the runner will resume from, i.e.
            ``cfg.load_from``, or the latest in ``cfg.work_dir`` (its
            ``last_checkpoint`` file) when that is None; nothing is checked
            when ``cfg.resume`` is false or there is no checkpoint. A path
            that is not a local file is not checked (a warning says so).

    Raises:
        RuntimeError: If the train loop iterates epochs with mmengine's
            ``EpochBasedTrainLoop.run_epoch`` (``train_cfg`` with
            ``by_epoch=True``, or a ``type`` resolving to that loop or a
            subclass keeping its ``run_epoch``) and the checkpoint was
            taken inside an epoch. The message names the epoch, what would
            happen, and the remedies: ``type=
            'sdt3_mm.ResumableEpochBasedTrainLoop'``, or the newest
            ``epoch_<n>.pth`` beside the checkpoint.
    """
    if checkpoint is None:
        if not cfg.get('resume', False):
            return
        checkpoint = cfg.get('load_from') or find_latest_checkpoint(
            cfg['work_dir'])
        if checkpoint is None:
            return
    if not _builds_mmengine_epoch_loop(cfg):
        return
    path = None
    if isinstance(checkpoint, str):
        path = checkpoint
        if not osp.isfile(path):
            print_log(
                f'check_mid_epoch_resume: {path} is not a local file; not '
                f'checked whether it was taken inside an epoch.',
                logger='current',
                level='WARNING')
            return
        checkpoint = safe_torch_load(path, map_location='cpu')
    meta = checkpoint['meta']
    epoch, iteration = meta['epoch'], meta['iter']
    runtime_info = checkpoint.get('message_hub', {}).get('runtime_info', {})
    length = _saved_iters_per_epoch(runtime_info.get)
    if length is not None:
        inside = iteration != epoch * length
    else:
        inside = iteration % epoch != 0 if epoch else iteration > 0
    if not inside:
        return
    trained = f' ({iteration - epoch * length} of its {length} batches)' \
        if length else ''
    name = path or 'the checkpoint'
    if path is None:
        newest = 'resume from an epoch checkpoint'
    else:
        folder = osp.dirname(osp.abspath(path))
        newest = newest_epoch_checkpoint(folder)
        newest = (f'resume from the newest epoch checkpoint, {newest}'
                  if newest else f'resume from an epoch checkpoint (there '
                  f'is no epoch_<n>.pth in {folder})')
    raise RuntimeError(
        f'{name} was taken inside epoch {epoch + 1}, after iteration '
        f'{iteration}{trained}. mmengine\'s EpochBasedTrainLoop would '
        f'train that epoch again from its first batch, repeating the '
        f'batches trained before the checkpoint and ending past the '
        f'configured iterations with other weights than an uninterrupted '
        f'run. Use train_cfg = dict(type='
        f'\'sdt3_mm.ResumableEpochBasedTrainLoop\', max_epochs=..., '
        f'val_interval=...) (without by_epoch), which trains only the '
        f'rest of the epoch, or {newest}.')
