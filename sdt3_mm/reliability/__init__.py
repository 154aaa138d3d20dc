"""Reliability: checkpoints read safely and strictly, written atomically,
found again for a resume, and training stopped at the first non-finite
value.

What each module holds (and imports, within the package):

- ``checkpoint_files``: a checkpoint file's bytes: the one check of them
  (:func:`checkpoint_file_defect`), the atomic writer
  (:func:`write_atomic`), free space, and the search for the checkpoint to
  resume from (:func:`find_resumable_checkpoint`). Imports nothing of ours.
- ``checkpoint_content``: what a loaded checkpoint holds: its model state
  dict (:func:`model_state_dict`), its tensors, and the finiteness check
  (:func:`all_finite`, :func:`check_checkpoint_content`). Imports nothing
  of ours.
- ``safe_loading``: the one reader of a checkpoint file,
  :func:`safe_torch_load` (weights-only, after the file check, before the
  content check), and mmengine's loaders of every scheme on top of it.
  Imports the two above.
- ``official_checkpoint`` and ``pretrained``: the official checkpoints'
  names mapped onto ours, and the strict loading of pretrained weights into
  an ESpikeFormer (``init_cfg=dict(type='Pretrained')``).
- The hooks (``AtomicCheckpointHook``, ``SafeCheckpointLoadingHook``,
  ``StrictLoadingHook``, ``NonFiniteCheckHook``) and the train loop
  (``ResumableEpochBasedTrainLoop``, with :func:`check_mid_epoch_resume`),
  registered in sdt3_mm's ``HOOKS`` and ``LOOPS``.

Nothing here imports ``sdt3_mm.models``; the backbones import
:func:`load_pretrained_backbone` from here.
"""
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .checkpoint_content import (all_finite, check_checkpoint_content,
                                 model_state_dict, tensor_bytes)
from .checkpoint_files import (checkpoint_defect, checkpoint_file_defect,
                               find_resumable_checkpoint,
                               is_complete_checkpoint, write_atomic)
from .non_finite_check_hook import NonFiniteCheckHook
from .official_checkpoint import (convert_official_state_dict,
                                  is_official_state_dict)
from .pretrained import (describe_arch, load_pretrained_backbone,
                         read_state_dict)
from .resumable_loop import (ResumableEpochBasedTrainLoop,
                             check_mid_epoch_resume)
from .safe_loading import (CheckpointFileError, enable_safe_checkpoint_loading,
                           restore_checkpoint_loader, safe_checkpoint_loader,
                           safe_checkpoint_loading, safe_torch_load)
from .safe_loading_hook import SafeCheckpointLoadingHook
from .strict_loading_hook import StrictLoadingHook, checkpoint_mismatches

__all__ = [
    'AtomicCheckpointHook', 'CheckpointFileError', 'NonFiniteCheckHook',
    'ResumableEpochBasedTrainLoop', 'SafeCheckpointLoadingHook',
    'StrictLoadingHook', 'all_finite', 'check_checkpoint_content',
    'check_mid_epoch_resume', 'checkpoint_defect', 'checkpoint_file_defect',
    'checkpoint_mismatches', 'convert_official_state_dict', 'describe_arch',
    'enable_safe_checkpoint_loading', 'find_resumable_checkpoint',
    'is_complete_checkpoint', 'is_official_state_dict',
    'load_pretrained_backbone', 'model_state_dict', 'read_state_dict',
    'restore_checkpoint_loader', 'safe_checkpoint_loader',
    'safe_checkpoint_loading', 'safe_torch_load', 'tensor_bytes',
    'write_atomic'
]
