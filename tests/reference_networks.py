"""The reference networks of the original code's cases, built by our
modules: one definition for the CPU tests and the CUDA tier."""
import torch

from sdt3_mm.models import ESpikeFormer, MetaSpikeClsHead, MetaSpikeFormer
from sdt3_mm.models.neurons import SFANeuron
from sdt3_mm.reliability import convert_official_state_dict

#: The Meta-SpikeFormer preset of ``meta_reference`` (``T`` from the case).
META_SMALL = dict(family='meta', embed_dims=[32, 64, 128, 160])


def e_spikeformer_reference(case):
    """The E-SpikeFormer S reference network (``official_fixture``) and its
    classifier.

    Args:
        case (dict): The reference case, with ``checkpoint``.

    Returns:
        tuple[ESpikeFormer, Callable]: The backbone with its five taps, and
        ``classify(tap)``: the spec's classifier (average pool, a neuron of
        norm 1, the case's linear head) on the last tap, on the tap's
        device.
    """
    backbone = ESpikeFormer(
        arch='s',
        out_indices=(0, 1, 2, 3, 4),
        init_cfg=dict(type='Pretrained', checkpoint=case['checkpoint']))
    backbone.init_weights()
    weight, bias = case['state_dict']['head.weight'], case['state_dict'][
        'head.bias']

    def classify(tap):
        pooled = tap.flatten(2).mean(2)
        return torch.nn.functional.linear(
            SFANeuron(norm=1)(pooled), weight.to(tap.device),
            bias.to(tap.device))

    return backbone, classify


def meta_spikeformer_reference(case):
    """The Meta-SpikeFormer reference network (``meta_reference``): the
    backbone (per-step features) and its kd head in one module.

    Args:
        case (dict): The reference case, with ``checkpoint`` and ``T``.

    Returns:
        nn.Sequential: backbone then head; in training the head returns
        ``(logits, kd_logits)``.
    """
    backbone = MetaSpikeFormer(
        META_SMALL,
        T=case['T'],
        average_time=False,
        init_cfg=dict(type='Pretrained', checkpoint=case['checkpoint']))
    backbone.init_weights()
    head = MetaSpikeClsHead(10, 160, T=case['T'])
    head.load_state_dict(convert_official_state_dict(case['state_dict'])[1])
    return torch.nn.Sequential(backbone, head)
