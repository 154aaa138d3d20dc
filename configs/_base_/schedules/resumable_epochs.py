# Epoch-based training with sdt3_mm's loop, which resumes exactly from
# iteration checkpoints inside an epoch too (mmengine's would train that
# epoch again), validating every epoch; MMPretrain's validation and test
# loops. A config gives the length: `train_cfg = dict(max_epochs=N)`.
train_cfg = dict(type='sdt3_mm.ResumableEpochBasedTrainLoop', val_interval=1)
val_cfg = dict()
test_cfg = dict()
