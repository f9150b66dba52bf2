"""Context parallelism: every rank holds a shard of the tokens, and tap's decisions must agree.

Under diffusers' ``transformer.enable_parallelism(config=ContextParallelConfig(...))`` each rank
of the context-parallel group sees a contiguous chunk of the image tokens. A decision taken from a
mean over one rank's tokens differs between ranks; a full step on one rank and a predicted step
on another then desynchronises the attention collectives and hangs. :class:`TokenShards` reduces
tensors that stay on the device with functional collectives (as (sum, count), so uneven shards
stay exact) or gathers a per-token tensor whole; a decision the host reads at once (``agree``)
uses a plain ``all_reduce``. Plugins that aggregate over tokens use :func:`token_mean` and
:func:`gather_tokens`, which read the group of the step being computed; without parallelism they
cost nothing.
"""

from __future__ import annotations

import contextvars
from typing import Any

import torch
import torch.distributed as dist

from tap._compat import context_parallel_mesh


def context_parallel_group(transformer: torch.nn.Module) -> Any:
    """The process group diffusers' context parallelism splits this transformer's tokens over, or None."""
    mesh = context_parallel_mesh(transformer)
    return None if mesh is None else mesh.get_group()


class TokenShards:
    """This rank's shard of the tokens (the last dimension of what it is given) within ``group``."""

    def __init__(self, group: Any = None) -> None:
        self.group = group
        self.size = 1 if group is None else dist.get_world_size(group)
        self.rank = 0 if group is None else dist.get_rank(group)
        self._counts: dict[int, list[int]] = {}  # this rank's token count -> every rank's

    @property
    def active(self) -> bool:
        return self.size > 1

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over the ranks."""
        if not self.active:
            return tensor
        from torch.distributed import _functional_collectives as funcol

        return funcol.all_reduce(tensor, "sum", self.group)

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean over every rank's tokens (the last dimension), reduced as (sum, count)."""
        if not self.active:
            return values.mean(dim=-1)
        total = values.sum(dim=-1, dtype=torch.float64)
        count = torch.full_like(total, values.shape[-1])
        reduced = self.sum(torch.stack([total, count]))
        return (reduced[0] / reduced[1]).to(values.dtype)

    def counts(self, local: int, device: torch.device) -> list[int]:
        """Every rank's token count, asked once per local count."""
        if local not in self._counts:
            sizes = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(self.size)]
            dist.all_gather(sizes, torch.tensor([local], device=device), group=self.group)
            self._counts[local] = [int(size) for size in sizes]
        return self._counts[local]

    def gather(self, values: torch.Tensor) -> tuple[torch.Tensor, slice]:
        """Every rank's ``values`` joined along the last dimension, and the slice that is this rank's."""
        if not self.active:
            return values, slice(None)
        from torch.distributed import _functional_collectives as funcol

        counts = self.counts(values.shape[-1], values.device)
        widest = max(counts)
        padded = torch.nn.functional.pad(values, (0, widest - values.shape[-1]))
        gather = getattr(funcol, "all_gather_single", None) or funcol.all_gather_tensor  # the newer name since torch 2.12
        joined = gather(padded.movedim(-1, 0).contiguous(), 0, self.group).movedim(0, -1)
        parts = [joined[..., rank * widest : rank * widest + count] for rank, count in enumerate(counts)]
        start = sum(counts[: self.rank])
        return torch.cat(parts, dim=-1), slice(start, start + counts[self.rank])

    def agree(self, flag: bool, device: torch.device) -> tuple[bool, bool]:
        """(any rank's flag, whether the ranks disagreed): one small all-reduce, read on the host."""
        if not self.active:
            return flag, False
        votes = torch.tensor([int(flag), int(not flag)], device=device)
        dist.all_reduce(votes, op=dist.ReduceOp.MAX, group=self.group)
        return bool(votes[0]), bool(votes[0] and votes[1])


NO_SHARDS = TokenShards()
_current: contextvars.ContextVar[TokenShards] = contextvars.ContextVar("tap_token_shards", default=NO_SHARDS)


def current_shards() -> TokenShards:
    """The token shards of the step tap is computing (no parallelism outside a step)."""
    return _current.get()


def token_mean(values: torch.Tensor) -> torch.Tensor:
    """For plugins: the mean over the last (token) dimension across every rank, equal on all of them."""
    return current_shards().mean(values)


def gather_tokens(values: torch.Tensor) -> tuple[torch.Tensor, slice]:
    """For plugins: ``values`` with every rank's tokens along the last dimension, and this rank's slice."""
    return current_shards().gather(values)


class using_shards:
    """``with using_shards(shards):`` makes them the current step's, for :func:`token_mean` and :func:`gather_tokens`."""

    __slots__ = ("shards", "token")

    def __init__(self, shards: TokenShards) -> None:
        self.shards = shards

    def __enter__(self) -> None:
        self.token = _current.set(self.shards)

    def __exit__(self, *exc) -> None:
        _current.reset(self.token)
