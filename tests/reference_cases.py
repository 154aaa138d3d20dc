"""Reference cases of the original code, with weights and inputs from seeds.

A reference case is a network in the official checkpoint format, an input,
and what the original code (BICLab's Spike-Driven-Transformer-V3 and -V2)
computed from them. The weights and the input are made here, from a seed,
by the scheme below; only the original code's outputs are stored, in
``tests/data/reference_cases/<name>.pth`` (written by
``tests/data/make_reference_cases.py``, which runs the original code on
exactly what :meth:`ReferenceCase.state_dict` and
:meth:`ReferenceCase.input` return here).

The seed scheme, per key of the case's official key list (name and shape):

* BatchNorm (a key whose module also has ``running_mean``): ``weight`` and
  ``running_var`` uniform in [0.75, 1.25], ``bias`` normal with mean
  ``bn_bias_mean`` and std 0.1 (a positive shift keeps the neurons firing
  through the depth of a random network), ``running_mean`` normal with
  std 0.1, ``num_batches_tracked`` 0. Randomised statistics make eval mode
  differ from train mode, so the two outputs check different paths.
* Convolutions (weights of 3 or more dimensions) and their biases: uniform
  in +-1 / sqrt(fan_in), PyTorch's default initialisation, which the
  original code keeps.
* Linear layers (2-dimensional weights): weight normal with std 0.02 (the
  original's ``trunc_normal_`` cuts at +-2, 100 std, which no draw
  reaches; drawn with ``normal_``, the same on every PyTorch release,
  where ``nn.init.trunc_normal_`` changed its algorithm in 2.13); the bias
  uniform in +-1 / sqrt(fan_in) rather than the original's 0, so that the
  case checks the bias is applied.

Each tensor draws from its own ``torch.Generator`` seeded with
``(seed << 32) | crc32(key)``, so a tensor depends on its name and shape
only, not on the order of the keys. The input is standard normal from a
generator seeded with ``seed``. The stored file keeps a SHA-256 of the
weights and of the input the original code saw; :meth:`ReferenceCase.load`
refuses to compare against outputs made from other tensors (if a PyTorch
release ever draws differently), so a failure of a reference test means
the model changed, never the inputs.
"""
import ast
import hashlib
import os.path as osp
import zlib
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch

DATA = osp.join(osp.dirname(osp.abspath(__file__)), 'data')

BN_BUFFERS = ('running_mean', 'running_var', 'num_batches_tracked')


def read_key_list(path: str) -> Dict[str, Tuple[int, ...]]:
    """Read an official key list: ``name<TAB>shape`` lines, ``#`` comments.

    Args:
        path (str): the key list file.

    Returns:
        dict: each parameter or buffer name mapped to its shape, in file
        order.
    """
    shapes = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            name, shape = line.split('\t')
            shapes[name] = tuple(ast.literal_eval(shape))
    if not shapes:
        raise ValueError(f'{path} lists no keys')
    return shapes


def _generator(seed: int, key: str) -> torch.Generator:
    return torch.Generator().manual_seed((seed << 32)
                                         | zlib.crc32(key.encode()))


def _uniform(shape, bound, generator):
    return torch.empty(shape).uniform_(-bound, bound, generator=generator)


def seeded_tensor(key: str, shape: Tuple[int, ...], keys, seed: int,
                  bn_bias_mean: float) -> torch.Tensor:
    """The tensor the seed scheme (module docstring) makes for one key.

    Args:
        key (str): the official name, e.g. ``block3.0.attn.q_conv.1.bias``.
        shape (tuple[int]): its shape.
        keys (dict): every key of the network mapped to its shape (to tell a
            BatchNorm from a convolution and to find a bias's weight).
        seed (int): the case's seed.
        bn_bias_mean (float): mean of the BatchNorm biases.

    Returns:
        torch.Tensor: float32, or int64 for ``num_batches_tracked``.
    """
    module, kind = key.rsplit('.', 1)
    g = _generator(seed, key)
    if kind == 'num_batches_tracked':
        return torch.zeros(shape, dtype=torch.long)
    if f'{module}.running_mean' in keys:  # a BatchNorm
        if kind in ('weight', 'running_var'):
            return torch.empty(shape).uniform_(0.75, 1.25, generator=g)
        if kind == 'bias':
            return torch.empty(shape).normal_(bn_bias_mean, 0.1, generator=g)
        if kind == 'running_mean':
            return torch.empty(shape).normal_(0., 0.1, generator=g)
    weight = keys.get(f'{module}.weight')
    if weight is None:
        raise ValueError(f'no rule of the seed scheme makes {key!r} '
                         f'{shape}: it is neither BatchNorm nor a layer '
                         'with a weight')
    fan_in = 1
    for size in weight[1:]:
        fan_in *= size
    if kind == 'bias':
        return _uniform(shape, fan_in**-0.5, g)
    if kind == 'weight' and len(shape) == 2:  # nn.Linear
        # Truncated at +-2 = 100 std, which no draw reaches: a plain
        # normal_ (stable across releases), not nn.init.trunc_normal_,
        # whose algorithm changed between PyTorch 2.11 and 2.13.
        weight = torch.empty(shape).normal_(0., 0.02, generator=g)
        if weight.abs().max() > 2.:
            raise ValueError(f'{key!r}: a draw beyond the truncation at +-2')
        return weight
    if kind == 'weight':  # convolutions, PyTorch's default
        return _uniform(shape, fan_in**-0.5, g)
    raise ValueError(f'no rule of the seed scheme makes {key!r} {shape}')


def fingerprint(tensors: Dict[str, torch.Tensor]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of tensors.

    Args:
        tensors (dict[str, torch.Tensor]): e.g. a state dict.

    Returns:
        str: the hex digest (independent of the dict's order).
    """
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(f'{name}|{t.dtype}|{tuple(t.shape)}|'.encode())
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class ReferenceCase:
    """One reference case: how its inputs are made, where its outputs are.

    Args:
        name (str): the case's name, also its file name under
            ``tests/data/reference_cases/``.
        key_list (str): the official key list (names and shapes), relative
            to ``tests/data``.
        input_shape (tuple[int]): shape of the input image batch.
        seed (int): the case's seed.
        bn_bias_mean (float): mean of the BatchNorm biases.
        time_steps (int, optional): T of a Meta-SpikeFormer case (the input
            is repeated over T steps); None for E-SpikeFormer.
    """
    name: str
    key_list: str
    input_shape: Tuple[int, ...]
    seed: int
    bn_bias_mean: float
    time_steps: Optional[int] = None

    @property
    def outputs_path(self) -> str:
        """The stored outputs of the original code."""
        return osp.join(DATA, 'reference_cases', f'{self.name}.pth')

    def keys(self) -> Dict[str, Tuple[int, ...]]:
        """The official keys of the case's network, with shapes."""
        return read_key_list(osp.join(DATA, self.key_list))

    def state_dict(self) -> Dict[str, torch.Tensor]:
        """The official-format weights, made by the seed scheme."""
        keys = self.keys()
        return {
            key: seeded_tensor(key, shape, keys, self.seed,
                               self.bn_bias_mean)
            for key, shape in keys.items()
        }

    def input(self) -> torch.Tensor:
        """The input batch: standard normal from the case's seed."""
        return torch.randn(
            self.input_shape,
            generator=torch.Generator().manual_seed(self.seed))

    def load(self) -> dict:
        """The whole case: made weights and input, stored outputs.

        Returns:
            dict: ``state_dict`` and ``input`` (made here) and what the
            stored file holds: the original code's outputs
            (``eval_logits``, ``train_logits``, ``train_input_grad`` and,
            for E-SpikeFormer, ``eval_stage_outputs``), ``T`` for a
            Meta-SpikeFormer case, and a ``note``.

        Raises:
            RuntimeError: when the stored outputs were made from other
                weights or another input than the scheme makes now.
        """
        stored = torch.load(self.outputs_path, weights_only=True)
        state_dict, x = self.state_dict(), self.input()
        for what, made in (('state_dict', state_dict), ('input', {
                'input': x
        })):
            if fingerprint(made) != stored[f'{what}_sha256']:
                raise RuntimeError(
                    f'reference case {self.name!r}: the seed scheme no '
                    f'longer makes the {what} that the original code ran '
                    f'on ({self.outputs_path}); was tests/reference_cases.py '
                    'edited, or does this PyTorch draw random numbers '
                    'differently? Regenerate the outputs with '
                    'tests/data/make_reference_cases.py.')
        case = {
            k: v
            for k, v in stored.items() if not k.endswith('_sha256')
        }
        case.update(state_dict=state_dict, input=x)
        return case


E_SPIKEFORMER_S = ReferenceCase(
    name='e_spikeformer_s',
    key_list='official_keys/e_spikeformer_s_5.1M.txt',
    input_shape=(2, 3, 64, 64),
    seed=3,
    bn_bias_mean=0.3)

# widths 32/64/128/160, 10 classes, kd head; the key list was written from
# the original code by make_reference_cases.py.
META_SPIKEFORMER_SMALL_T4 = ReferenceCase(
    name='meta_spikeformer_small_T4',
    key_list='reference_cases/meta_spikeformer_small_T4_keys.txt',
    input_shape=(2, 3, 64, 64),
    seed=2,
    bn_bias_mean=0.6,
    time_steps=4)
