"""The fused Triton SFA neuron against the eager one, bit for bit.

Without a GPU the kernels run on the CPU under Triton's interpreter. Triton
reads ``TRITON_INTERPRET`` when a kernel is decorated, that is when
:mod:`sdt3_mm.models.neurons.sfa_triton` is imported, so the fused side
runs in a fresh Python process with the variable set (whatever this
process imported before, and under pytest-xdist alike); the eager side and
the comparisons run here. Tests marked ``cuda`` compare the two on a GPU.
"""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

import sdt3_mm
from sdt3_mm.models import SFANeuron
from sdt3_mm.models.neurons.sfa_neuron import _SFAFunction

pytest.importorskip('triton', reason='the fused SFA neuron needs triton')

_REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(sdt3_mm.__file__)))
_KERNELS_MODULE = 'sdt3_mm.models.neurons.sfa_triton'

# Fires each case of a file through sfa_fire_fused (forward, and backward
# with the case's gradient where the input needs one) and saves the results.
_FIRE_FUSED = '''
import sys
import torch
from sdt3_mm.models.neurons.sfa_triton import sfa_fire_fused
cases = torch.load(sys.argv[1])
results = {}
for name, case in cases.items():
    x = case['x'].clone().requires_grad_(case['requires_grad'])
    spikes, code = sfa_fire_fused(x, case['max_level'], case['norm'],
                                  case['rounding'], case['bounds'],
                                  case['encode'])
    grad = None
    if case['requires_grad']:
        spikes.backward(case['grad'])
        grad = x.grad
    results[name] = dict(spikes=spikes.detach(), code=code, grad=grad)
torch.save(results, sys.argv[2])
'''


def _python(code, *args, interpret):
    """Run ``code`` in a fresh Python with this checkout's ``sdt3_mm``."""
    # This checkout first, the rest of the path kept (the GPU check puts
    # the libraries it installed there).
    path = os.environ.get('PYTHONPATH')
    env = dict(os.environ,
               PYTHONPATH=os.pathsep.join(filter(None, [_REPO_ROOT, path])))
    env.pop('TRITON_INTERPRET', None)
    if interpret:
        env['TRITON_INTERPRET'] = '1'
    done = subprocess.run([sys.executable, '-c', code, *args],
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


_SPECIALS = [float('nan'), float('inf'), -float('inf'), -0.0, 0.0]


def _every_value(dtype, low, high):
    """Every value of a 16-bit float ``dtype`` in ``[low, high]`` (with
    its subnormals), and NaN, the infinities and both zeros."""
    values = torch.arange(-2**15, 2**15, dtype=torch.int32)
    values = values.to(torch.int16).view(dtype)
    values = values[(values >= low) & (values <= high)]
    return torch.cat([values, torch.tensor(_SPECIALS, dtype=dtype)])


def _fp32_grid(low, high):
    """fp32 values around every rounding and window boundary in
    ``[low, high]``: every fp16 value there (which holds all halves and
    integers), the fp32 values either side of each, random values, and the
    special values."""
    grid = _every_value(torch.float16, low, high).float()
    grid = grid[grid.isfinite()]
    generator = torch.Generator().manual_seed(0)
    return torch.cat([
        grid,
        torch.nextafter(grid, torch.tensor(float('inf'))),
        torch.nextafter(grid, torch.tensor(-float('inf'))),
        torch.rand(2000, generator=generator) * (high - low) + low,
        torch.tensor(_SPECIALS + [1e-45, -1e-45]),
    ])


def _gradient(x, seed):
    """A gradient for ``x``: random, with infinities, NaN and subnormals
    (outside the window ``grad * 0`` is NaN for those, as eager has)."""
    generator = torch.Generator().manual_seed(seed)
    grad = torch.randn(x.shape, generator=generator).to(x.dtype)
    flat = grad.view(-1)
    flat[:4] = torch.tensor([float('inf'), -float('inf'), float('nan'), 0.])
    flat[4:8] = torch.tensor([1e-45, -1e-45, 3e-39, 1e-40]).to(x.dtype)
    return grad


def _case(x, D, norm, rounding, bounds, encode=True, requires_grad=True):
    return dict(
        x=x,
        grad=_gradient(x, seed=D),
        max_level=D,
        norm=norm,
        rounding=rounding,
        bounds=bounds,
        encode=encode,
        requires_grad=requires_grad)


def _cases():
    """Every rounding and window, D from 1 to 127, norms D, 1 and ones that
    are not powers of two, all three dtypes (the 16-bit ones exhaustively
    over [-2, D + 2]), the code and the window kept, and none."""
    fp16, bf16 = torch.float16, torch.bfloat16
    cases = {
        'fp16_D4_half_even_closed':
        _case(_every_value(fp16, -2, 6), 4, 4., 'half_even', 'closed'),
        'fp16_D8_norm1_half_up_open':
        _case(_every_value(fp16, -2, 10), 8, 1., 'half_up', 'open'),
        'fp16_D6_half_up_closed_window':
        _case(_every_value(fp16, -2, 8), 6, 6., 'half_up', 'closed', False),
        'fp16_D4_no_gradient':
        _case(
            _every_value(fp16, -2, 6),
            4,
            4.,
            'half_even',
            'closed',
            requires_grad=False),
        'bf16_D3_half_even_open_window':
        _case(_every_value(bf16, -2, 5), 3, 3., 'half_even', 'open', False),
        'bf16_D127_half_up_closed':
        _case(_every_value(bf16, -2, 129), 127, 127., 'half_up', 'closed'),
        'bf16_D5_norm0.7_half_even_closed':
        _case(_every_value(bf16, -2, 7), 5, 0.7, 'half_even', 'closed'),
        'fp32_D7_half_even_closed':
        _case(_fp32_grid(-2, 9), 7, 7., 'half_even', 'closed'),
        'fp32_D1_norm1_half_up_open_window':
        _case(_fp32_grid(-2, 3), 1, 1., 'half_up', 'open', False),
        'fp32_D3_norm0.7_half_up_closed':
        _case(_fp32_grid(-2, 5), 3, 0.7, 'half_up', 'closed'),
        'fp32_D127_no_gradient':
        _case(
            _fp32_grid(-2, 129),
            127,
            127.,
            'half_even',
            'closed',
            requires_grad=False),
        # Layouts: outputs strided as eager's; a gradient of another
        # layout than the input's.
        'fp32_channels_last':
        _case(
            torch.randn(2, 3, 5,
                        7).mul(3).to(memory_format=torch.channels_last), 4, 4.,
            'half_even', 'closed'),
        'fp16_transposed':
        _case(torch.randn(40, 30).mul(3).half().t(), 4, 4., 'half_up', 'open'),
        'fp32_sliced':
        _case(
            torch.randn(40, 30).mul(3)[:, ::3], 4, 4., 'half_even', 'closed'),
    }
    # A gradient laid out unlike the input.
    transposed = cases['fp16_transposed']
    transposed['grad'] = transposed['grad'].contiguous()
    return cases


@pytest.fixture(scope='module')
def fused_results(tmp_path_factory):
    """Each case and its fused results, from the interpreter."""
    folder = tmp_path_factory.mktemp('sfa_triton')
    cases = _cases()
    torch.save(cases, folder / 'cases.pth')
    _python(
        _FIRE_FUSED,
        str(folder / 'cases.pth'),
        str(folder / 'results.pth'),
        interpret=True)
    return cases, torch.load(folder / 'results.pth')


def _eager(case):
    x = case['x'].clone().requires_grad_(case['requires_grad'])
    spikes, code = _SFAFunction.apply(x, case['max_level'], case['norm'],
                                      case['rounding'], case['bounds'],
                                      case['encode'])
    grad = None
    if case['requires_grad']:
        spikes.backward(case['grad'])
        grad = x.grad
    return dict(spikes=spikes.detach(), code=code, grad=grad)


def _assert_same_bits(fused, eager, what):
    """The same dtype, shape and bits; NaN where eager has NaN (a NaN's
    payload is not part of the contract: torch's own CPU and CUDA kernels
    make different ones)."""
    if eager is None:
        assert fused is None, what
        return
    assert fused.dtype == eager.dtype and fused.shape == eager.shape, what
    if eager.is_floating_point():
        nan = eager.isnan()
        assert torch.equal(fused.isnan(), nan), f'{what}: NaN elsewhere'
        bits = {2: torch.int16, 4: torch.int32}[eager.element_size()]
        fused, eager = fused[~nan].view(bits), eager[~nan].view(bits)
    differ = (fused != eager).nonzero().flatten()
    assert differ.numel() == 0, (f'{what}: {differ.numel()} elements '
                                 f'differ, first at {differ[:5].tolist()}')


@pytest.mark.parametrize('name', list(_cases()))
def test_triton_fused_neuron_is_bit_equal_to_eager(fused_results, name):
    cases, results = fused_results
    case, fused = cases[name], results[name]
    eager = _eager(case)
    for key in ('spikes', 'code', 'grad'):
        _assert_same_bits(fused[key], eager[key], f'{name} {key}')
    if case['x'].stride() == torch.empty_like(case['x']).stride():
        # Dense inputs: outputs laid out as eager lays them out.
        assert fused['spikes'].stride() == eager['spikes'].stride(), name


def test_triton_cases_cover_what_the_contract_names():
    """The cases above hold what the bit-equality is claimed for."""
    cases = _cases().values()
    assert {c['x'].dtype
            for c in cases} == {torch.float32, torch.float16, torch.bfloat16}
    assert {(c['rounding'], c['bounds'])
            for c in cases} == {('half_even', 'closed'), ('half_even', 'open'),
                                ('half_up', 'closed'), ('half_up', 'open')}
    assert {c['max_level'] for c in cases} >= {1, 127}
    assert {c['norm'] for c in cases} >= {1., 0.7, 3.}
    assert {(c['encode'], c['requires_grad'])
            for c in cases} >= {(True, True), (False, True), (True, False)}


def test_triton_kernels_stay_unimported_on_the_cpu():
    """``import sdt3_mm`` and firing CPU tensors (fused=True, training)
    leave the kernel module unimported: a machine without triton works."""
    out = _python(
        'import sys, torch\n'
        'from sdt3_mm.models import SFANeuron\n'
        f'assert {_KERNELS_MODULE!r} not in sys.modules\n'
        'x = torch.randn(64, requires_grad=True)\n'
        'SFANeuron(fused=True).train()(x).sum().backward()\n'
        f'print({_KERNELS_MODULE!r} in sys.modules)\n',
        interpret=False)
    assert out.strip() == 'False'


def test_triton_fused_argument_changes_no_config_or_state():
    neuron = SFANeuron(D=4)
    eager = SFANeuron(D=4, fused=False)
    assert neuron.fused and not eager.fused
    assert 'fused' not in repr(neuron)
    assert 'fused=False' in repr(eager)
    assert neuron.state_dict().keys() == eager.state_dict().keys()
    built = sdt3_mm.models.build_neuron(dict(type='SFANeuron', fused=False))
    assert built.fused is False
    # On the CPU both fire eagerly: the same autograd function.
    x = torch.randn(16, requires_grad=True)
    assert type(neuron(x).grad_fn) is type(eager(x).grad_fn)


def test_triton_fire_fused_rejects_bad_arguments():
    kernels = pytest.importorskip(_KERNELS_MODULE)
    x = torch.randn(8)
    with pytest.raises(TypeError, match='torch.float64'):
        kernels.sfa_fire_fused(x.double(), 4, 4., 'half_even', 'closed')
    with pytest.raises(ValueError, match='rounding must be one of'):
        kernels.sfa_fire_fused(x, 4, 4., 'stochastic', 'closed')
    with pytest.raises(ValueError, match='bounds must be one of'):
        kernels.sfa_fire_fused(x, 4, 4., 'half_even', 'half')
    with pytest.raises(ValueError, match='max_level must be an integer'):
        kernels.sfa_fire_fused(x, 128, 4., 'half_even', 'closed')
    with pytest.raises(ValueError, match='norm must be positive'):
        kernels.sfa_fire_fused(x, 4, 0., 'half_even', 'closed')


_needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason='needs a CUDA GPU')


@pytest.mark.cuda
@_needs_cuda
@pytest.mark.parametrize('name', list(_cases()))
def test_triton_fused_neuron_is_bit_equal_to_eager_on_cuda(name):
    from sdt3_mm.models.neurons.sfa_triton import sfa_fire_fused
    case = dict(_cases()[name])
    case['x'], case['grad'] = case['x'].cuda(), case['grad'].cuda()
    x = case['x'].clone().requires_grad_(case['requires_grad'])
    spikes, code = sfa_fire_fused(x, case['max_level'], case['norm'],
                                  case['rounding'], case['bounds'],
                                  case['encode'])
    if case['requires_grad']:
        spikes.backward(case['grad'])
    eager = _eager(case)
    _assert_same_bits(spikes.detach(), eager['spikes'], f'{name} spikes')
    _assert_same_bits(code, eager['code'], f'{name} code')
    _assert_same_bits(x.grad, eager['grad'], f'{name} grad')


@pytest.mark.cuda
@_needs_cuda
@pytest.mark.parametrize('dtype',
                         [torch.float32, torch.float16, torch.bfloat16])
def test_triton_neuron_dispatches_to_fused_kernels_on_cuda(dtype):
    x = (torch.randn(4, 64, 7, 7, device='cuda') * 3).to(dtype)
    grad = torch.randn_like(x)
    outputs = {}
    for fused in (True, False):
        neuron = SFANeuron(D=4, fused=fused).train()
        xi = x.clone().requires_grad_()
        spikes, code = neuron.fire(xi)
        spikes.backward(grad)
        outputs[fused] = (spikes, code.data, xi.grad)
        assert type(spikes.grad_fn).__name__ == (
            '_FusedSFAFunctionBackward' if fused else '_SFAFunctionBackward')
        with torch.no_grad():
            assert torch.equal(neuron.eval()(x), spikes.detach())
    for fused, eager, what in zip(outputs[True], outputs[False],
                                  ('spikes', 'code', 'grad')):
        _assert_same_bits(fused.detach(), eager.detach(), what)
