"""What the CUDA tier's tests share: the device, fp32 arithmetic without
TF32, the reference networks of both families, the demo classifiers, and a
record of the spike codes training made.

Every test of the tier is marked ``cuda``; ``tests/conftest.py`` skips them
(with the reason) where ``torch.cuda.is_available()`` is False, and
``pytest -m cuda`` runs them alone.
"""
import collections
import contextlib
import copy
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from sdt3_mm.models.neurons.spiking_neuron import (spike_code_of,
                                                   spiking_neurons)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CUDA = torch.device('cuda')

# The demo classifier of each family (the mixed-precision and export tests
# build their models from these configs, as users do).
DEMO_CLASSIFIERS = {
    'e-spikeformer':
    osp.join(ROOT, 'configs/demo/e-spikeformer-t_shapes-cls.py'),
    'meta-spikeformer':
    osp.join(ROOT, 'configs/demo/meta-spikeformer_t4_shapes-cls.py'),
}
# The E-SpikeFormer reference case's taps, in out_indices order.
E_STAGES = ['ConvBlock1_1', 'ConvBlock1_2', 'ConvBlock2_2', 'block3', 'block4']

@contextlib.contextmanager
def ieee_fp32():
    """Convolutions and matrix products in full fp32 on CUDA, by cuDNN's
    deterministic algorithms, restoring the previous settings on exit.

    cuDNN runs fp32 convolutions in TF32 by default on Ampere and later
    (``torch.backends.cudnn.allow_tf32``), a 10-bit mantissa: membrane
    potentials would move by about 1e-3 and spikes near a rounding tie would
    fire differently, so no comparison with the CPU at 1e-4 could hold.
    Matrix products default to full fp32; set here too, for a session that
    turned TF32 on.
    """
    matmul = torch.backends.cuda.matmul
    # Set only when on: writing the (default) False would still change
    # torch's precision setting from 'none' to 'ieee' for good.
    tf32_matmul = matmul.allow_tf32
    if tf32_matmul:
        matmul.allow_tf32 = False
    try:
        with torch.backends.cudnn.flags(
                enabled=None,
                benchmark=None,
                benchmark_limit=None,
                deterministic=True,
                allow_tf32=False):
            yield
    finally:
        if tf32_matmul:
            matmul.allow_tf32 = True


def on_device(model, device):
    """A copy of ``model`` on ``device`` (the original is left where it
    is, its BatchNorm statistics untouched by what the copy runs)."""
    return copy.deepcopy(model).to(device)


def gradients(model):
    """Each parameter's gradient, on the CPU, by name."""
    return {
        name: param.grad.detach().cpu()
        for name, param in model.named_parameters() if param.grad is not None
    }


def assert_gradients_close(got, expected, rtol=1e-4, floor=1e-6):
    """Assert two sets of parameter gradients agree.

    Each parameter's gradient must be within ``rtol`` of its own norm, plus
    ``floor`` times the norm of all gradients together: a convolution bias
    in front of a training-mode BatchNorm has a gradient that is zero but
    for rounding (the batch mean removes it), which no relative comparison
    of its own can hold. Measured on the reference cases, fp32 against
    fp64 on a CPU: every other gradient within 2e-6 of its norm; the
    zero-in-theory ones below 1e-16 of the total.

    Args:
        got (dict[str, Tensor]): Gradients by parameter name.
        expected (dict[str, Tensor]): The same names, the gradients to meet.
        rtol (float): Tolerance relative to each gradient's norm.
        floor (float): Tolerance relative to the norm of all gradients.
    """
    assert got.keys() == expected.keys()
    total = torch.cat([g.flatten().double() for g in expected.values()]).norm()
    assert total > 0, 'no gradient reached the parameters'
    for name, grad in expected.items():
        error = (got[name].double() - grad.double()).norm()
        bound = rtol * grad.double().norm() + floor * total
        assert error <= bound, (f'{name}: gradient differs by {error:.3g} '
                                f'(bound {bound:.3g})')


class SpikeCodeRecord:
    """Forward hooks on every spiking neuron of a model that record, per
    call, the spike code its output carried and the output's dtype; a
    context manager.

    Attributes:
        calls (list[tuple[str, SpikeCode | None, torch.dtype]]): Neuron
            name, the code its output carried (None: no code) and the
            dtype of the spikes, per call.
    """

    def __init__(self, model):
        self.neurons = spiking_neurons(model)
        if not self.neurons:
            raise ValueError(f'{type(model).__name__} has no spiking neuron')
        self.calls = []
        self._handles = []

    def __enter__(self):
        for name, neuron in self.neurons:
            self._handles.append(
                neuron.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, name):

        def hook(neuron, inputs, output):
            self.calls.append((name, spike_code_of(output), output.dtype))

        return hook

    def assert_codes_made(self, device):
        """Assert that every neuron fired at least once, each call with a
        one-byte code on ``device`` (the backward will read these, not the
        float spikes)."""
        called = {name for name, _, _ in self.calls}
        missing = [name for name, _ in self.neurons if name not in called]
        assert not missing, f'neurons never called: {missing[:5]}'
        bare = [name for name, code, _ in self.calls if code is None]
        assert not bare, f'{len(bare)} calls made no spike code: {bare[:5]}'
        for name, code, _ in self.calls:
            assert code.data.dtype == torch.uint8, name
            assert code.data.device.type == torch.device(device).type, name

    def spike_dtypes(self):
        """The dtypes the neurons' spikes came in, with their calls."""
        return collections.Counter(dtype for _, _, dtype in self.calls)


def demo_classifier(family):
    """The demo config's classifier of ``family`` (``'e-spikeformer'`` or
    ``'meta-spikeformer'``), built in MMPretrain's scope, seeded, in
    training mode, on the CPU."""
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(DEMO_CLASSIFIERS[family])
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(cfg.model).train()


def classification_batch(num_classes=6, batch_size=4, size=64, device=CUDA):
    """A seeded batch for a demo classifier's ``mode='loss'``: normalised
    images and data samples with labels.

    Returns:
        tuple[Tensor, list[DataSample]]
    """
    from mmpretrain.structures import DataSample
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(batch_size, 3, size, size, generator=generator)
    samples = [
        DataSample().set_gt_label(i % num_classes).to(device)
        for i in range(batch_size)
    ]
    return inputs.to(device), samples
