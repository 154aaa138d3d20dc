# The spike-masked autoencoder (Spike-driven Transformer V3) with
# E-SpikeFormer 83M: half of the 16 x 16 patches masked, the encoder run
# sparsely, a light ViT decoder (256 wide, 4 layers, 4 heads), MSE on
# per-patch-normalised pixels of the masked patches.
model = dict(
    type='sdt3_mm.SpikeMAE',
    mask_ratio=0.5,
    backbone=dict(type='sdt3_mm.ESpikeFormer', arch='83m', D=4),
    neck=dict(
        type='sdt3_mm.SpikeMAEDecoder',
        in_channels=512,
        embed_dims=256,
        depth=4,
        num_heads=4),
    head=dict(
        type='MAEPretrainHead',
        norm_pix=True,
        patch_size=16,
        loss=dict(type='PixelReconstructionLoss', criterion='L2')))
