"""Several processes for context parallelism: spawned by tap on one machine, or started by torchrun.

``tap generate --context-parallel N`` spawns N ranks itself (gloo on CPUs, NCCL on GPUs) unless
torchrun started it, in which case each process is one rank of torchrun's group (multi-node too).
Each rank splits every denoiser's tokens with diffusers' ``enable_parallelism``.
"""

from __future__ import annotations

import datetime
import os
import socket
import time
from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tap.errors import TAPError

RANK_TIMEOUT_S = 600  # a collective that waits longer than this fails instead of hanging


def under_torchrun() -> bool:
    """Whether torchrun (or another launcher setting RANK and WORLD_SIZE) started this process."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def init_rank(rank: int, world: int, device: str, port: int | None = None) -> str:
    """Join the process group as ``rank`` of ``world``; returns this rank's device."""
    if port is not None:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    cuda = device.startswith("cuda")
    dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=RANK_TIMEOUT_S))
    if not cuda:
        return device
    local = int(os.environ.get("LOCAL_RANK", rank))
    torch.cuda.set_device(local)
    return f"cuda:{local}"


def split_tokens(pipe: Any, world: int) -> None:
    """diffusers' context parallelism (Ulysses, degree ``world``) on every denoiser of ``pipe``."""
    from diffusers import ContextParallelConfig

    from tap.api import find_denoisers
    from tap.compile import unwrap

    if torch.accelerator.device_count() == 0:
        # diffusers gives each rank an accelerator (rank % device_count); on a CPU-only machine
        # every rank computes on the CPU, which this count of one makes it do.
        torch.accelerator.device_count = lambda: 1
    for module in find_denoisers(pipe).values():
        unwrap(module).enable_parallelism(config=ContextParallelConfig(ulysses_degree=world))


def spawn(fn: Callable, world: int, *args, timeout_s: float = RANK_TIMEOUT_S) -> None:
    """Run ``fn(rank, world, port, *args)`` in ``world`` processes; a rank that fails or hangs fails the whole."""
    context = mp.spawn(fn, args=(world, free_port(), *args), nprocs=world, join=False)
    deadline = time.monotonic() + timeout_s
    try:
        while not context.join(timeout=2):
            if time.monotonic() > deadline:
                raise TAPError(f"the {world} context-parallel ranks did not finish within {timeout_s:.0f} s")
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()
