from .loops import ResumableEpochBasedTrainLoop, check_mid_epoch_resume

__all__ = ['ResumableEpochBasedTrainLoop', 'check_mid_epoch_resume']
