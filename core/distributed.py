"""Data-parallel training under ``torchrun --nproc_per_node=N``: process group, sharding, collectives.

Every rank builds the same epoch plan (same seed); each global batch of B examples is split across
the ranks like ``DistributedSampler`` does (rank r takes examples r, r+N, r+2N, ...), and each rank's
mean loss is weighted by ``N * local / B`` so that DDP's gradient average equals the gradient of the
global batch's mean loss, even when B does not divide evenly. Rank 0 alone writes the run folder.
With one process (no ``WORLD_SIZE``) every helper is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> DistInfo:
    """Join the process group ``torchrun`` describes in the environment (nccl on GPU, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if not dist.is_initialized():
        if cuda:
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group("nccl" if cuda else "gloo")
    return info


def device_for(info: DistInfo, name: str) -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` on GPU machines."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if info.enabled and name == "cuda":
        return torch.device("cuda", info.local_rank)
    return torch.device(name)


def shard(index: list[int], info: DistInfo) -> tuple[list[int], float]:
    """This rank's slice of a global batch and the weight of its mean loss.

    ``weight = world * len(slice) / len(index)``, so averaging ``weight * mean_loss`` over the ranks
    gives the global batch's mean loss. A rank whose slice would be empty (a global batch smaller than
    the world) takes the batch's first example with weight 0: it still joins the gradient all-reduce.
    """
    if not info.enabled:
        return index, 1.0
    mine = index[info.rank::info.world]
    if not mine:
        return index[:1], 0.0
    return mine, info.world * len(mine) / len(index)


def all_mean(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Mean over the ranks (a copy; the identity with one process)."""
    if not info.enabled:
        return x
    y = x.detach().clone()
    dist.all_reduce(y, op=dist.ReduceOp.SUM)
    return y / info.world


def any_rank(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on one of them (a stop request reaching one rank)."""
    if not info.enabled:
        return flag
    t = torch.tensor([int(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def broadcast_path(path: Path | None, info: DistInfo, device: torch.device) -> Path | None:
    """Rank 0's ``path`` on every rank (sent as UTF-8 bytes in a tensor, no pickle)."""
    if not info.enabled:
        return path
    data = str(path).encode() if info.is_main and path is not None else b""
    n = torch.tensor([len(data)], dtype=torch.long, device=device)
    dist.broadcast(n, src=0)
    buf = torch.zeros(int(n.item()), dtype=torch.uint8, device=device)
    if info.is_main:
        buf.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    dist.broadcast(buf, src=0)
    return path if info.is_main else Path(bytes(buf.cpu().tolist()).decode())


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
