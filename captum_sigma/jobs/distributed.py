"""The few torch.distributed calls a corpus job needs (torchrun does the rest).

Under ``torchrun --nproc_per_node=N`` the environment carries ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK``; a plain ``python`` run is rank 0 of 1 and never
touches torch.distributed.
"""

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, List, Optional

import torch
import torch.distributed as dist

__all__ = ["ProcessGroup", "init_process_group"]

#: Ranks finish their share at different times; rank 0 then waits for all of them
#: before merging, so the collective timeout must cover a whole job.
_TIMEOUT = timedelta(hours=48)


@dataclass
class ProcessGroup:
    """Rank, world size and local rank of this process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def any(self, flag: bool) -> bool:
        """True when ``flag`` is true on any rank."""
        return self.reduce([1.0 if flag else 0.0], dist.ReduceOp.MAX)[0] > 0

    def reduce(self, values: List[float], op: Any = dist.ReduceOp.SUM) -> List[float]:
        """``values`` combined over every rank (sum by default)."""
        if not self.distributed:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64)
        if dist.get_backend() == "nccl":
            tensor = tensor.cuda(self.local_rank)
        dist.all_reduce(tensor, op=op)
        return tensor.tolist()

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def init_process_group(device: Optional[str] = None) -> ProcessGroup:
    """Joins the torchrun job described by the environment, if any.

    Args:
        device: The job's device; ``cuda`` selects the NCCL backend and this rank's
            local GPU, anything else gloo.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return ProcessGroup()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_nccl = device is not None and str(device).startswith("cuda")
    if use_nccl:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if use_nccl else "gloo", timeout=_TIMEOUT
        )
    return ProcessGroup(rank=rank, world_size=world_size, local_rank=local_rank)
