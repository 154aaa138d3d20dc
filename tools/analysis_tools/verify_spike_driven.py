"""Check that a model's spike-driven execution equals its integer execution.

Runs the model (a config with optional checkpoint, on its test images, or
a backbone preset on random images) three ways and compares:

1. float64, integer vs spike-driven (every spiking neuron's count ``k``
   sent as binary maps, one per virtual step: D for an SFA neuron, one
   per real time step for a LIF neuron; each map checked to be exactly
   {0, 1} and the maps to add up to the neuron's output; every weight
   layer and attention product accumulating them): the end-to-end
   outputs must agree to ``--tol64`` (1e-9);
2. float32, the same, with every expanded layer also run on the integers
   it was given: each layer must agree to ``--tol32`` (1e-5, relative to
   the layer's largest output, at least 1); end to end, the fraction of
   neuron outputs that changed level is reported (float32 sums in another
   order can move a membrane across a rounding boundary);
3. float64, the model vs ``fold_bn(model)``: outputs must agree to 1e-9.

It lists what still multiplies (the stem on pixels, unfolded BNs, the
attention scale, layer scales until folded, layers that read a BN's or a
depthwise conv's real output). End-to-end
outputs are the logits of a classifier or segmentor and the neck's
features of a detector. Works for any model made of
:class:`~sdt3_mm.models.neurons.spiking_neuron.SpikingNeuron` modules
(E-SpikeFormer, Meta-SpikeFormer, their heads). Inputs holding NaN or Inf
are refused. Exits with status 1 if a check fails, or if no neuron output
was seen at all.

Example::

    python tools/analysis_tools/verify_spike_driven.py \
        configs/demo/e-spikeformer-t_shapes-cls.py \
        work_dirs/e-spikeformer-t_shapes-cls/epoch_20.pth --num-images 16
"""
import argparse
import copy
import json
import sys
from collections import defaultdict

import torch
from model_inputs import (add_input_arguments, add_model_arguments,
                          analysis_batches, build_analysis_model)

import sdt3_mm  # noqa: F401  (registries)
from sdt3_mm.analysis import SpikeDriven, check_finite, fold_bn
from sdt3_mm.models.neurons.spiking_neuron import SpikingNeuron


def parse_args():
    parser = argparse.ArgumentParser(
        description='Verify spike-driven execution against integers')
    add_model_arguments(parser)
    add_input_arguments(parser, num_images=8, batch_size=4)
    parser.add_argument(
        '--fold-bn',
        action='store_true',
        help='verify the deployed model, BN folded (what still multiplies '
        'is then the stem and the scales)')
    parser.add_argument('--tol64', type=float, default=1e-9)
    parser.add_argument('--tol32', type=float, default=1e-5)
    parser.add_argument('--json', help='also write the results here')
    return parser.parse_args()


def end_to_end(model, data, cfg):
    """The tensors compared end to end, as a flat list."""
    inputs = data['inputs']
    if cfg is None:
        outputs = model(inputs)
    elif hasattr(model, 'rpn_head') or hasattr(model, 'bbox_head'):
        outputs = model.extract_feat(inputs)
    else:
        outputs = model(inputs, data['data_samples'], mode='tensor')

    def flatten(item):
        if isinstance(item, torch.Tensor):
            return [item]
        return [t for sub in item for t in flatten(sub)]

    return flatten(outputs)


def _max_diff(a, b):
    return max((x - y).abs().max().item() for x, y in zip(a, b))


class LevelRecorder:
    """Records every spiking neuron's counts ``k``, call by call."""

    def __init__(self, model):
        self.levels = []
        self._handles = [
            m.register_forward_hook(self._hook) for m in model.modules()
            if isinstance(m, SpikingNeuron)
        ]

    def _hook(self, neuron, inputs, output):
        levels = neuron.spike_counts(output.detach()).to(torch.int16)
        self.levels.append((levels, neuron.max_level))

    def remove(self):
        for handle in self._handles:
            handle.remove()


def verify(model, cfg, batches):
    """Run the three comparisons over ``batches``; return the results."""
    model64 = copy.deepcopy(model).double()
    folded64 = fold_bn(model64)
    result = dict(
        max_diff64=0.,
        fold_max_diff64=0.,
        max_diff32=0.,
        changed_levels=0,
        neuron_outputs=0,
        spikes=0,
        possible_spikes=0)
    reports = []
    with torch.no_grad():
        for index, data in enumerate(batches):
            check_finite(data['inputs'], f'the input of batch {index}')
            data64 = dict(data, inputs=data['inputs'].double())
            integer = end_to_end(model64, data64, cfg)
            with SpikeDriven(model64):
                spikes = end_to_end(model64, data64, cfg)
            result['max_diff64'] = max(result['max_diff64'],
                                       _max_diff(integer, spikes))
            result['fold_max_diff64'] = max(
                result['fold_max_diff64'],
                _max_diff(integer, end_to_end(folded64, data64, cfg)))

            recorder = LevelRecorder(model)
            try:
                integer = end_to_end(model, data, cfg)
                integer_levels, recorder.levels = recorder.levels, []
                with SpikeDriven(model, compare=True) as report:
                    spikes = end_to_end(model, data, cfg)
            finally:
                recorder.remove()
            reports.append(report)
            result['max_diff32'] = max(result['max_diff32'],
                                       _max_diff(integer, spikes))
            for (a, depth), (b, _) in zip(integer_levels, recorder.levels):
                result['changed_levels'] += (a != b).sum().item()
                result['neuron_outputs'] += a.numel()
                result['spikes'] += a.sum(dtype=torch.int64).item()
                result['possible_spikes'] += a.numel() * depth
    result['max_layer_error32'] = max(r.max_layer_error() for r in reports)
    result['binary_maps'] = sum(r.binary_maps for r in reports)
    result['expanded_ops'] = len(reports[-1].expanded)
    by_reason = defaultdict(list)
    for name, reason in reports[-1].non_additions.items():
        by_reason[reason].append(name)
    result['non_additions'] = dict(by_reason)
    return result


def main():
    args = parse_args()
    model, cfg = build_analysis_model(args.target, args.checkpoint,
                                      args.cfg_options)
    if args.fold_bn:
        model = fold_bn(model)
    batches = analysis_batches(model, cfg, args.num_images, args.size,
                               args.batch_size)
    result = verify(model, cfg, batches)
    changed = result['changed_levels'] / result['neuron_outputs']
    checks = [
        ('float64 end to end, spike-driven vs integer', result['max_diff64'],
         args.tol64),
        ('float64 end to end, BN folded vs not', result['fold_max_diff64'],
         args.tol64),
        ('float32 per layer, spike-driven vs integer (relative)',
         result['max_layer_error32'], args.tol32),
    ]
    if not result['binary_maps']:
        print('FAIL  no spiking neuron output was seen, so nothing ran '
              'spike-driven (neurons must be called as modules in eval '
              'mode)')
        sys.exit(1)
    print(f'{result["expanded_ops"]} weight layers and attention products '
          f'ran on {result["binary_maps"]} binary maps; each map was checked '
          f'to be exactly 0 or 1, and each neuron\'s maps to add up to its '
          f'output; mean firing rate '
          f'{result["spikes"] / result["possible_spikes"]:.4f}')
    for label, value, tol in checks:
        print(f'{"PASS" if value <= tol else "FAIL"}  {label}: '
              f'{value:.3e} (tolerance {tol:g})')
    print(f'float32 end to end: max output difference '
          f'{result["max_diff32"]:.3e}; neuron outputs that changed level: '
          f'{result["changed_levels"]} of {result["neuron_outputs"]} '
          f'({changed:.2e})')
    print('operations that multiply:')
    for reason, names in result['non_additions'].items():
        shown = ', '.join(names[:3]) + (', ...' if len(names) > 3 else '')
        print(f'  {len(names):4d} x {reason}: {shown}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)
    if any(value > tol for _, value, tol in checks):
        sys.exit(1)


if __name__ == '__main__':
    main()
