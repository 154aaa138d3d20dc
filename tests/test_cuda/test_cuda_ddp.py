"""A backbone training step under DistributedDataParallel over NCCL (one
process, world size 1): the spike codes made on the GPU, the gradients
DDP reduces the same as without it, the step taken."""
import math

import pytest
import torch
import torch.distributed as dist
from cuda_tier import (CUDA, SpikeCodeRecord, assert_gradients_close,
                       gradients, ieee_fp32, on_device)
from torch.nn.parallel import DistributedDataParallel

from sdt3_mm.models import ESpikeFormer

pytestmark = pytest.mark.cuda


@pytest.fixture
def nccl_group(tmp_path):
    """An NCCL process group of this process alone, destroyed afterwards
    (mmengine reads the world size from it: no later test may see it)."""
    if not dist.is_available() or not dist.is_nccl_available():
        pytest.skip('this torch has no NCCL backend for torch.distributed')
    torch.cuda.set_device(0)
    dist.init_process_group(
        'nccl',
        init_method=f'file://{tmp_path / "rendezvous"}',
        rank=0,
        world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def _loss(model, x):
    tap, = model(x)
    return tap.float().square().mean()


def test_nccl_ddp_train_step_with_spike_codes(nccl_group):
    torch.manual_seed(0)
    backbone = ESpikeFormer('t').train()
    plain = on_device(backbone, CUDA)
    ddp = DistributedDataParallel(on_device(backbone, CUDA), device_ids=[0])
    assert dist.get_backend() == 'nccl' and dist.get_world_size() == 1
    x = torch.randn(
        4, 3, 64, 64, generator=torch.Generator().manual_seed(0)).to(CUDA)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
    before = [p.detach().clone() for p in ddp.parameters()]
    with ieee_fp32():
        with SpikeCodeRecord(ddp.module) as record:
            loss = _loss(ddp, x)
            loss.backward()
        _loss(plain, x).backward()
    torch.cuda.synchronize()
    assert math.isfinite(loss.item())
    record.assert_codes_made(CUDA)
    # DDP's bucketed all-reduce over one process averages nothing away.
    assert_gradients_close(gradients(ddp.module), gradients(plain), rtol=1e-6)
    optimizer.step()
    params = list(ddp.parameters())
    changed = sum(not torch.equal(a, p) for a, p in zip(before, params))
    assert changed > len(params) // 2
