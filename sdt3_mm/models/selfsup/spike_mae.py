"""Spike-masked autoencoder: masked pretraining of the large E-SpikeFormers."""
import torch
from mmengine.model import BaseModule
from mmpretrain.models.backbones.vision_transformer import \
    TransformerEncoderLayer
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.models.utils import build_2d_sincos_position_embedding
from torch import nn

from sdt3_mm.registry import MODELS
from .sparse_masking import SparseMasking


@MODELS.register_module()
class SpikeMAEDecoder(BaseModule):
    """The light ViT decoder of the spike-masked autoencoder.

    Encoder tokens (stride 16, one per patch) are embedded, masked patches
    get a learned mask token, fixed 2-D sin-cos positions are added, and
    ``depth`` transformer layers predict every patch's pixels.

    Args:
        in_channels (int): Channels of the encoder's last tap.
        embed_dims (int): Decoder width. Defaults to 256.
        depth (int): Transformer layers. Defaults to 4.
        num_heads (int): Attention heads. Defaults to 4.
        mlp_ratio (int): Hidden ratio of the MLPs. Defaults to 4.
        patch_size (int): Patch size in pixels. Defaults to 16.
        in_pixels (int): Channels of the image. Defaults to 3.
    """

    def __init__(self,
                 in_channels,
                 embed_dims=256,
                 depth=4,
                 num_heads=4,
                 mlp_ratio=4,
                 patch_size=16,
                 in_pixels=3,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.embed_dims = embed_dims
        self.embed = nn.Linear(in_channels, embed_dims)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.layers = nn.ModuleList([
            TransformerEncoderLayer(embed_dims, num_heads,
                                    mlp_ratio * embed_dims)
            for _ in range(depth)
        ])
        self.norm = nn.LayerNorm(embed_dims)
        self.predict = nn.Linear(embed_dims, patch_size**2 * in_pixels)

    def init_weights(self):
        super().init_weights()
        nn.init.normal_(self.mask_token, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, feats, visible):
        """Predict the pixels of every patch.

        Args:
            feats (Tensor): ``B x C x h x w`` encoder output.
            visible (Tensor): ``B x h x w``, 1 where visible.

        Returns:
            Tensor: ``B x (h * w) x (patch_size^2 * in_pixels)``.
        """
        height, width = feats.shape[2:]
        tokens = self.embed(feats.flatten(2).transpose(1, 2))
        keep = visible.flatten(1).unsqueeze(-1).to(tokens.dtype)
        tokens = tokens * keep + self.mask_token * (1 - keep)
        tokens = tokens + build_2d_sincos_position_embedding(
            (width, height), self.embed_dims).to(tokens)
        for layer in self.layers:
            tokens = layer(tokens)
        return self.predict(self.norm(tokens))


@MODELS.register_module()
class SpikeMAE(BaseSelfSupervisor):
    """Spike-masked autoencoder (E-SpikeFormer V3's masked pretraining).

    Random 16 x 16 patches are masked (``mask_ratio``); the backbone runs
    sparsely (masked patches are zero in the input and after every conv
    and BN, BN statistics over visible positions), the decoder predicts
    the pixels of every patch, and the head's loss (MSE on
    per-patch-normalised pixels) is taken on masked patches only.

    The backbone is converted once, here, by :meth:`SparseMasking.convert`
    (masked BatchNorms holding the same parameters and buffers, permanent
    conv hooks), all reading :attr:`sparse_masking`, the mask state this
    model owns. :meth:`encode` sets the mask and leaves it held until the
    next :meth:`encode` or :meth:`extract_feat`, so that backward's
    recomputation of checkpointed blocks (``with_cp=True``) sees the
    forward's mask: run each masked forward's backward before the next
    forward. :meth:`extract_feat` clears it, and the backbone then computes
    exactly as a plain ESpikeFormer. The backbone's keys are
    ESpikeFormer's, under ``backbone.``.

    Args:
        backbone (dict): An ESpikeFormer whose last tap is at stride 16.
        neck (dict): The decoder, :class:`SpikeMAEDecoder`.
        head (dict): MMPretrain's ``MAEPretrainHead`` (``norm_pix=True``).
        mask_ratio (float): Fraction of patches masked. Defaults to 0.5.
        patch_size (int): Patch size. Defaults to 16.
        **kwargs: ``data_preprocessor``, ``init_cfg`` and the rest of
            :class:`BaseSelfSupervisor`.
    """

    def __init__(self,
                 backbone,
                 neck,
                 head,
                 mask_ratio=0.5,
                 patch_size=16,
                 **kwargs):
        super().__init__(backbone=backbone, neck=neck, head=head, **kwargs)
        if not 0 < mask_ratio < 1:
            raise ValueError(f'SpikeMAE: mask_ratio must be in (0, 1), got '
                             f'{mask_ratio}')
        if getattr(self.backbone, 'total_stride', patch_size) != patch_size:
            raise ValueError(
                f'SpikeMAE: the backbone\'s last tap is at stride '
                f'{self.backbone.total_stride}, not the patch size '
                f'{patch_size}')
        self.mask_ratio = mask_ratio
        self.patch_size = patch_size
        # A plain object, not a submodule: no state-dict keys of its own.
        self.sparse_masking = SparseMasking()
        self.sparse_masking.convert(self.backbone)

    def random_visible(self, images):
        """A random patch mask, ``B x h x w``, 1 where visible; exactly
        ``round(mask_ratio * h * w)`` patches of each image are masked."""
        batch, _, height, width = images.shape
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(f'SpikeMAE: image of {height} x {width} pixels '
                             f'is not made of whole {self.patch_size} x '
                             f'{self.patch_size} patches')
        grid = (height // self.patch_size, width // self.patch_size)
        num_patches = grid[0] * grid[1]
        num_masked = round(self.mask_ratio * num_patches)
        order = torch.rand(batch, num_patches, device=images.device).argsort(1)
        visible = torch.ones(batch, num_patches, device=images.device)
        visible.scatter_(1, order[:, :num_masked], 0.)
        return visible.view(batch, *grid)

    def encode(self, images, visible):
        """The backbone's last tap, run sparsely for ``visible``.

        ``visible`` (``B x h x w``, 1 where visible) stays held by
        :attr:`sparse_masking` after this returns (for the recomputation
        in backward) until the next :meth:`encode` or :meth:`extract_feat`.
        """
        self.sparse_masking.check(self.backbone)
        self.sparse_masking.set(visible)
        return self.backbone(self.sparse_masking.mask_input(images))[-1]

    def extract_feat(self, inputs):
        """The backbone's taps, without masking (the mask is cleared)."""
        self.sparse_masking.clear()
        return self.backbone(inputs)

    def reconstruct(self, inputs, visible=None):
        """Predicted patches (``B x L x p^2 C``, per-patch normalised) and
        the visible mask used."""
        if visible is None:
            visible = self.random_visible(inputs)
        return self.neck(self.encode(inputs, visible), visible), visible

    def loss(self, inputs, data_samples, **kwargs):
        pred, visible = self.reconstruct(inputs)
        loss = self.head.loss(pred, inputs, 1 - visible.flatten(1))
        return dict(loss=loss)
