# Linear warm-up, then cosine decay: both counted in epochs and stepped
# every iteration. The two scheduler dicts without their values; a config
# inherits this file and gives the values:
#   param_scheduler = [
#       dict(**_base_.linear_warmup, start_factor=0.01, end=W),
#       dict(**_base_.cosine_decay, eta_min=1e-5, begin=W, end=max_epochs),
#   ]
linear_warmup = dict(
    type='LinearLR', by_epoch=True, begin=0, convert_to_iter_based=True)
cosine_decay = dict(
    type='CosineAnnealingLR', by_epoch=True, convert_to_iter_based=True)
