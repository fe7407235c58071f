"""Multi-process training with PyTorch's own engine (`torch.distributed`, DDP).

`torchrun --nproc_per_node N -m dcnrank train ...` starts N processes and tells each its
`RANK`, `LOCAL_RANK` and `WORLD_SIZE` (and where rank 0 listens). :func:`distributed_session`
joins them into one process group (gloo on CPU, NCCL when CUDA is there); `Trainer`
then wraps the model in `DistributedDataParallel`, so every step averages the gradients
of all ranks. Outside torchrun nothing changes: one process, rank 0 of 1.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist

from dcnrank.world import World

__all__ = ["all_reduce_sum", "current_world", "distributed_session", "training_device", "world_from_env"]

log = logging.getLogger(__name__)


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer. Received: {name}={text!r}") from None


def world_from_env() -> World:
    """The `World` that torchrun's `RANK`, `WORLD_SIZE` and `LOCAL_RANK` describe (rank 0 of 1 without them).

    Raises:
        ValueError: if a variable is not an integer or they contradict each other.
    """
    size, rank, local = _env_int("WORLD_SIZE", 1), _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if size < 1 or not 0 <= rank < size:
        raise ValueError(
            f"RANK must be in 0..WORLD_SIZE-1 and WORLD_SIZE ≥ 1. Received: RANK={rank}, WORLD_SIZE={size}"
        )
    return World(rank, size, local)


def current_world() -> World:
    """The process group's `World` when one is initialised, else rank 0 of 1."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0))
    return World()


@contextmanager
def distributed_session(device: str = "cpu") -> Iterator[World]:
    """Join torchrun's process group for the block (when `WORLD_SIZE` > 1), then leave it.

    The backend is NCCL when training on CUDA (`device="cuda"`, each rank on GPU
    `LOCAL_RANK`), gloo on the CPU. Ranks other than 0 log warnings only. Already
    inside a process group, it is used as it is.

    Yields:
        This process's `World`.
    """
    world = world_from_env()
    if world.size == 1 or dist.is_initialized():
        yield current_world() if dist.is_initialized() else world
        return
    backend = "nccl" if device == "cuda" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group(backend)
    root = logging.getLogger("dcnrank")
    level = root.level
    if not world.is_main:
        root.setLevel(logging.WARNING)
    log.info("process group of %d ranks (%s)", world.size, backend)
    try:
        yield world
    finally:
        root.setLevel(level)
        dist.destroy_process_group()


def training_device(device: str, world: World) -> torch.device:
    """`cpu`, or this rank's GPU (`cuda:LOCAL_RANK`) for `device="cuda"`.

    Raises:
        ValueError: if `device` is neither, or CUDA is asked for but not available.

    Example:
        >>> training_device("cpu", World())
        device(type='cpu')
    """
    if device == "cpu":
        return torch.device("cpu")
    if device != "cuda":
        raise ValueError(f"`device` must be 'cpu' or 'cuda'. Received: device={device!r}")
    if not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for, but torch.cuda.is_available() is False on this machine")
    return torch.device("cuda", world.local_rank)


def all_reduce_sum(value: torch.Tensor) -> torch.Tensor:
    """The sum of `value` over all ranks (`value` itself in one process)."""
    if current_world().size == 1:
        return value
    total = value.detach().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total
