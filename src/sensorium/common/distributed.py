"""Single-process or torchrun/DistributedDataParallel set-up, chosen from the environment."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from sensorium.common.errors import SensoriumError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits: its rank, the world size and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.is_distributed:
            dist.barrier()

    def all_reduce_mean(self, value: float) -> float:
        """Average a Python number over all processes."""
        if not self.is_distributed:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return float(tensor.item()) / self.world_size

    def close(self) -> None:
        if self.is_distributed and dist.is_initialized():
            dist.destroy_process_group()


def resolve_device(name: str) -> torch.device:
    """ "auto", "cpu" or "cuda" as a device this machine has; a clear error for a missing GPU."""
    if name not in ("auto", "cpu", "cuda"):
        raise SensoriumError(f"device {name!r}; expected auto, cpu or cuda")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise SensoriumError(
            "device cuda asked for, but this torch build or machine has no usable CUDA GPU; "
            "use --device cpu"
        )
    return torch.device(name)


def init_distributed(device: str = "auto") -> DistributedContext:
    """Join the process group torchrun describes in the environment, or run alone.

    Uses nccl on GPUs and gloo on CPUs. `device` is "auto", "cpu" or "cuda".
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = resolve_device(device).type == "cuda"
    if use_cuda:
        torch_device = torch.device("cuda", local_rank)
        torch.cuda.set_device(torch_device)
    else:
        torch_device = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        logger.info("joined process group: rank %d of %d", rank, world_size)
    return DistributedContext(rank, world_size, local_rank, torch_device)
