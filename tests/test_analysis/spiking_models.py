"""Small E-SpikeFormers whose neurons fire at realistic rates.

At initialisation (BN mean 0, variance 1, weight 1, bias 0) most neurons
of an untrained network stay silent, and a check on silent spikes proves
little. Random BN statistics and shifts make about a third of all
possible spikes fire, every neuron between about 8% and 100%.
"""
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from sdt3_mm.models import ESpikeFormer

LARGE = dict(family='large', embed_dims=[32, 64, 128], depth=2, rep_conv=True)


def randomise_norms(model, seed=0):
    """Give every BN random statistics and affine parameters (in place)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, _BatchNorm):
                n = module.num_features

                def rand():
                    return torch.rand(n, generator=generator)

                module.running_mean.copy_(rand() - 0.5)
                module.running_var.copy_(rand() + 0.5)
                module.weight.copy_(rand() + 0.5)
                module.bias.copy_(rand() * 2)
    return model


def firing_backbone(arch='t', seed=0):
    """An ESpikeFormer (all taps) with randomised norms, in eval mode."""
    torch.manual_seed(seed)
    model = ESpikeFormer(arch)
    model.out_indices = tuple(range(model.num_taps))
    if hasattr(model.stages[-1][0], 'layer_scale1'):
        with torch.no_grad():
            for block in model.stages[-1]:
                block.layer_scale1.fill_(0.5)
                block.layer_scale2.fill_(0.5)
    return randomise_norms(model, seed).eval()
