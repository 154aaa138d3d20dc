# Meta-SpikeFormer 55M (Spike-driven Transformer V2, "8_512"), first stage
# of the paper's schedule: trained at T = 1 on ImageNet-1k, then fine-tuned
# at T = 4 (./meta-spikeformer-55m-t4_t1-pre_8xb64-lamb-20e_in1k.py).
# The V2 optimiser settings are not in our spec; this uses E-SpikeFormer's
# from-scratch recipe (LAMB, 6e-4 per 256 images, 200 epochs, drop-path 0.1,
# label smoothing 0.1), which the V3 code inherits from V2's.
# Published ImageNet-1k top-1 at T = 4 (distilled from CAFormer-B36): 80.0.
_base_ = '../e_spikeformer/e-spikeformer-s_8xb256-lamb-200e_in1k.py'

T = 1
model = dict(
    backbone=dict(
        _delete_=True,
        type='sdt3_mm.MetaSpikeFormer',
        arch='55m',
        T=T,
        # The head's neuron runs over time: keep the T steps.
        average_time=False,
        drop_path_rate=0.1),
    head=dict(
        _delete_=True,
        type='sdt3_mm.MetaSpikeClsHead',
        num_classes=1000,
        in_channels=640,
        T=T,
        kd=True,
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        topk=(1, 5)))
