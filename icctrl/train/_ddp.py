"""DistributedDataParallel when launched by torchrun (WORLD_SIZE/RANK in the environment): gloo on CPU,
nccl on GPU. Each process takes an equal slice of every global batch, so the run matches one process."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from icctrl.errors import InvalidValueError


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in a (possibly single-process) run."""

    world: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def dist_info() -> DistInfo:
    """Read WORLD_SIZE, RANK, LOCAL_RANK as torchrun sets them (absent: one process)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise InvalidValueError(f"WORLD_SIZE/RANK/LOCAL_RANK must be integers: {exc}") from None
    if world < 1 or not 0 <= rank < world:
        raise InvalidValueError(f"inconsistent distributed environment: WORLD_SIZE={world}, RANK={rank}")
    return DistInfo(world, rank, local)


def init_distributed(info: DistInfo, device: torch.device) -> bool:
    """Join the process group (once); returns True when this call created it."""
    import torch.distributed as dist

    if not info.active or dist.is_initialized():
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)  # nccl binds each process to its own GPU
    dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world)
    return True


def close_distributed(created: bool) -> None:
    """Leave the process group if this run created it."""
    import torch.distributed as dist

    if created and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, info: DistInfo, device: torch.device) -> torch.nn.Module:
    """DDP around the model when running distributed (gradients averaged over processes)."""
    if not info.active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def shard(batch: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """This process's contiguous slice of a global batch of indices."""
    if not info.active:
        return batch
    if len(batch) < info.world:
        raise InvalidValueError(
            f"a batch of {len(batch)} windows cannot be split over {info.world} processes; "
            "use a larger batch_size or fewer processes"
        )
    return torch.tensor_split(batch, info.world)[info.rank]
