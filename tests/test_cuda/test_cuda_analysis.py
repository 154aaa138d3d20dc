"""The deployment analysis on CUDA: the spike-driven run of a reference
network (every neuron's binary maps checked, every weight layer and
product expanded over them) and the spike counter, the same there as on
the CPU."""
import math

import pytest
import torch
from cuda_tier import CUDA, ieee_fp32, on_device
from reference_networks import (e_spikeformer_reference,
                                meta_spikeformer_reference)

from sdt3_mm.analysis import ENERGY_PRESETS, SpikeCounter, SpikeDriven

pytestmark = pytest.mark.cuda


def _spike_driven(model, x, device):
    model = on_device(model, device).eval()
    with torch.no_grad(), SpikeDriven(model, compare=True) as report:
        model(x.to(device))
    return report


def test_spike_driven_run_on_cuda_as_on_cpu(official_fixture):
    backbone, _ = e_spikeformer_reference(official_fixture)
    x = official_fixture['input']
    cpu = _spike_driven(backbone, x, 'cpu')
    with ieee_fp32():
        cuda = _spike_driven(backbone, x, CUDA)
    torch.cuda.synchronize()
    assert cuda.binary_maps == cpu.binary_maps > 0
    assert cuda.expanded == cpu.expanded
    assert cuda.non_additions == cpu.non_additions
    assert len(cuda.layer_errors) == len(cuda.expanded)
    # Each expanded layer's sum over binary maps against the layer itself.
    assert cuda.max_layer_error() <= 1e-5


def _summary(model, x, device):
    model = on_device(model, device).eval()
    with torch.no_grad(), SpikeCounter(model) as counter:
        model(x.to(device))
        counter.add_images(len(x))
    return counter.summary(**ENERGY_PRESETS['fp32'])


def _assert_same_figures(got, expected, path='summary'):
    """Equal structure and values; floats within 1e-9 relative (the
    counts are float64 sums of integers, exact on both devices, but the
    energies are products of them)."""
    if isinstance(expected, dict):
        assert got.keys() == expected.keys(), path
        for key in expected:
            _assert_same_figures(got[key], expected[key], f'{path}.{key}')
    elif isinstance(expected, (list, tuple)):
        assert len(got) == len(expected), path
        for i, (a, b) in enumerate(zip(got, expected)):
            _assert_same_figures(a, b, f'{path}[{i}]')
    elif isinstance(expected, float):
        message = f'{path}: {got} on CUDA, {expected} on the CPU'
        assert math.isclose(
            got, expected, rel_tol=1e-9, abs_tol=1e-12), message
    else:
        assert got == expected, path


def _assert_counts_as_on_cpu(model, x):
    cpu = _summary(model, x, 'cpu')
    with ieee_fp32():
        cuda = _summary(model, x, CUDA)
    assert cpu['ac_sops'] > 0 and cpu['mean_firing_rate'] > 0
    _assert_same_figures(cuda, cpu)


def test_spike_counter_on_cuda_e_spikeformer(official_fixture):
    backbone, _ = e_spikeformer_reference(official_fixture)
    _assert_counts_as_on_cpu(backbone, official_fixture['input'])


def test_spike_counter_on_cuda_meta_spikeformer(meta_reference):
    model = meta_spikeformer_reference(meta_reference)
    _assert_counts_as_on_cpu(model, meta_reference['input'])
