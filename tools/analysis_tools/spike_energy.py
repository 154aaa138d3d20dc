"""Per-layer firing rates, synaptic operations and energy of a spiking model.

The model (BN folded, as deployed) runs its test forward on N images of
its config's test set (or on random images for a backbone preset) while
every spiking neuron's output and every weight layer's input is counted::

    E = E_MAC * FLOPs(layers on real values: the stem)
      + E_AC  * sum of FLOPs(layer) * rate * T * D   (layers on spikes)

with ``rate`` = mean count / D of the layer's input, counted, and T and D
the neurons' real and virtual time steps (E-SpikeFormer: 1 x D; Meta-
SpikeFormer: T x 1). Any model made of
:class:`~sdt3_mm.models.neurons.spiking_neuron.SpikingNeuron` modules works;
inputs holding NaN or Inf are refused. Prints a table, writes
``spike_energy.json`` and ``firing_rates.png`` (per-layer input firing
rates) into ``--out-dir``.

Examples::

    python tools/analysis_tools/spike_energy.py \
        configs/demo/e-spikeformer-t_shapes-cls.py \
        work_dirs/e-spikeformer-t_shapes-cls/epoch_20.pth --num-images 64
    python tools/analysis_tools/spike_energy.py s --num-images 8 --energy int8
    python tools/analysis_tools/spike_energy.py \
        configs/demo/meta-spikeformer_t4_shapes-cls.py --num-images 8
"""
import argparse
import json
import os
import os.path as osp

import torch
from model_inputs import (add_input_arguments, add_model_arguments,
                          analysis_batches, build_analysis_model)

import sdt3_mm  # noqa: F401  (registries)
from sdt3_mm.analysis import (ENERGY_PRESETS, SpikeCounter, check_finite,
                              fold_bn)


def parse_args():
    parser = argparse.ArgumentParser(
        description='Firing rates and energy of a spiking model')
    add_model_arguments(parser)
    add_input_arguments(parser, num_images=32, batch_size=8)
    parser.add_argument(
        '--energy',
        choices=sorted(ENERGY_PRESETS),
        default='fp32',
        help='energy per MAC / AC (45 nm): fp32 4.6 / 0.9 pJ (the '
        'papers\' convention), fp16 1.5 / 0.4, int8 0.23 / 0.03')
    parser.add_argument('--e-mac', type=float, help='pJ per MAC (overrides)')
    parser.add_argument('--e-ac', type=float, help='pJ per AC (overrides)')
    parser.add_argument(
        '--out-dir',
        help='where the JSON and the chart go (default: '
        'work_dirs/spike_energy/<config or preset name>)')
    return parser.parse_args()


def count(model, cfg, args):
    """Run the folded model on the images, counting."""
    counter = SpikeCounter(model)
    with counter, torch.no_grad():
        for index, data in enumerate(
                analysis_batches(model, cfg, args.num_images, args.size,
                                 args.batch_size)):
            check_finite(data['inputs'], f'the input of batch {index}')
            if cfg is None:
                model(data['inputs'])
            else:
                model(**data, mode='predict')
            inputs = data['inputs']
            # B x T x C x H x W: B clips of T frames
            counter.add_images(
                inputs.shape[0],
                frames=inputs.shape[1] if inputs.dim() == 5 else 1)
    return counter


def format_table(summary):
    lines = [
        f'{"layer":<48} {"T":>2} {"D":>3} {"rate":>7} {"FLOPs":>10} '
        f'{"syn. ops":>10} {"op":>4} {"energy uJ":>10}'
    ]
    for row in summary['layers']:
        rate = '' if row['firing_rate'] is None else \
            f'{row["firing_rate"]:.4f}'
        steps = '' if row['T'] is None else str(row['T'])
        depth = '' if row['D'] is None else str(row['D'])
        lines.append(f'{row["layer"]:<48} {steps:>2} {depth:>3} {rate:>7} '
                     f'{row["flops"]:10.3e} {row["sops"]:10.3e} '
                     f'{row["op"]:>4} {row["energy_pj"] * 1e-6:10.4f}')
    steps = '/'.join(str(t) for t in summary['T'])
    depths = '/'.join(str(d) for d in summary['D'])
    lines += [
        f'images: {summary["num_images"]}, T x D = {steps} x {depths} '
        f'(FLOPs cover all T steps), E_MAC {summary["e_mac_pj"]} pJ, '
        f'E_AC {summary["e_ac_pj"]} pJ',
        f'MAC FLOPs per image: {summary["mac_flops"]:.4e}',
        f'AC synaptic ops per image: {summary["ac_sops"]:.4e}',
        f'mean firing rate (all neurons): {summary["mean_firing_rate"]:.4f}',
        f'energy per image: {summary["energy_mj"]:.4f} mJ',
    ]
    return '\n'.join(lines)


def plot_rates(summary, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = [r for r in summary['layers'] if r['op'] == 'AC']
    fig, ax = plt.subplots(figsize=(8, 1.5 + 0.16 * len(rows)))
    ax.barh(range(len(rows)), [r['firing_rate'] for r in rows])
    ax.set_yticks(range(len(rows)), [r['layer'] for r in rows], fontsize=6)
    ax.invert_yaxis()
    ax.set_xlabel('input firing rate per virtual time step')
    ax.set_title(f'mean firing rate {summary["mean_firing_rate"]:.4f}, '
                 f'{summary["energy_mj"]:.4f} mJ per image')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    args = parse_args()
    model, cfg = build_analysis_model(args.target, args.checkpoint,
                                      args.cfg_options)
    energy = dict(ENERGY_PRESETS[args.energy])
    if args.e_mac is not None:
        energy['e_mac'] = args.e_mac
    if args.e_ac is not None:
        energy['e_ac'] = args.e_ac
    summary = count(fold_bn(model), cfg, args).summary(**energy)
    summary.update(
        target=args.target, checkpoint=args.checkpoint, energy=args.energy)
    print(format_table(summary))
    name = osp.splitext(osp.basename(args.target))[0]
    out_dir = args.out_dir or osp.join('work_dirs', 'spike_energy', name)
    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, 'spike_energy.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    plot_rates(summary, osp.join(out_dir, 'firing_rates.png'))
    print(f'written: {out_dir}/spike_energy.json, firing_rates.png')


if __name__ == '__main__':
    main()
