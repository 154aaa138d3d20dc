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


def firing_backbone(arch='t', seed=0, **kwargs):
    """An ESpikeFormer (all taps) with randomised norms and layer scales,
    in eval mode."""
    torch.manual_seed(seed)
    model = ESpikeFormer(arch, **kwargs)
    model.out_indices = tuple(range(model.num_taps))
    randomise_layer_scales(model, seed)
    return randomise_norms(model, seed).eval()


def randomise_layer_scales(model, seed=0):
    """Give every layer scale random values in [0.25, 1.25) (in place): at
    their initial 1e-6 the branches they scale vanish."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.rsplit('.', 1)[-1].startswith('layer_scale'):
                param.copy_(
                    torch.rand(param.shape, generator=generator) + 0.25)
    return model


def firing_meta_backbone(T=2, seed=0, embed_dims=(16, 32, 64, 96)):
    """A small MetaSpikeFormer (LIF neurons over T steps, all taps) with
    randomised norms, in eval mode."""
    from sdt3_mm.models import MetaSpikeFormer
    torch.manual_seed(seed)
    model = MetaSpikeFormer(
        dict(family='meta', embed_dims=list(embed_dims)), T=T)
    model.out_indices = tuple(range(model.num_taps))
    return randomise_norms(model, seed).eval()


def spike_means(model, kind):
    """Hooks recording each ``kind`` module's mean output count ``k`` per
    call, computed here from the output (``round(output * norm)``);
    returns the list they fill and their handles."""
    records, handles = [], []
    for name, module in model.named_modules():
        if isinstance(module, kind):

            def hook(neuron, inputs, output, name=name):
                counts = torch.round(output.detach().double() * neuron.norm)
                records.append((name, counts.mean().item(), output.numel()))

            handles.append(module.register_forward_hook(hook))
    return records, handles
