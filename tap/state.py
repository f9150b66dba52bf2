"""Per-generation state, kept apart for each cache context (cond / uncond calls)."""

from __future__ import annotations

import contextlib

import attrs
import torch
from diffusers.hooks.hooks import BaseState, StateManager

from tap._compat import cache_context, state_cache

DEFAULT_CONTEXT = "default"


@attrs.define
class Counters:
    """What happened in one generation, for :func:`tap.stats`."""

    steps: int = 0
    full_steps: int = 0
    predicted_steps: int = 0
    blocks_run: int = 0
    blocks_skipped: int = 0
    candidate_tokens: torch.Tensor | None = None  # [len(family)] tokens that used each candidate
    cache_bytes: int = 0  # the most the cache held
    fallbacks: int = 0  # predicted steps computed in full because the prediction was not finite
    restarts: int = 0  # steps at which the stack input left its trajectory, so the forecast started over
    left_alone: str | None = None  # why the schedule computed this whole generation in full, if it did
    non_finite: dict[str, int] = attrs.field(factory=dict)  # predicted steps in which each candidate was not finite somewhere


class GenerationState(BaseState):
    """One context's step counter and cache of the last full steps: (step, h, r) and h's Gram matrix."""

    def __init__(self) -> None:
        self.counters = Counters()
        self.reset()

    def reset(self, *args, **kwargs) -> None:
        """End the generation: drop the cache and the step count, keep the counters for :func:`tap.stats`.

        diffusers pipelines reset stateful hooks when a call ends; this is what that reset does, so the
        statistics of the generation that just finished stay readable until the next one starts.
        """
        self.step = -1
        self.first_step = 0  # the sampler's index of the generation's first call (> 0 when strength < 1)
        self.timestep: float | None = None  # read only when no step index is known
        self.marker = None  # the sampler run this generation belongs to (see tap.clock)
        self.shape: tuple = ()
        self.cached_steps: tuple[int, ...] = ()
        self.h: torch.Tensor | None = None  # [H, B, N, D] probe features of the cached full steps
        self.r: torch.Tensor | None = None  # [H, B, N, D] block-stack residuals of the cached full steps
        self.gram: torch.Tensor | None = None  # [H, H, B, N] <h_j, h_l>
        self.pending: tuple[torch.Tensor, torch.Tensor | None] | None = None  # (x, h) of a full step in flight
        self.block_residuals: torch.Tensor | None = None  # the summed block residuals of that step (residual_per_block)
        self.skipping = False
        self.full_reason: str | None = None  # why this call must run every block (see Adapter.full_compute_reason)
        self.left_alone: str | None = None  # why the schedule computes this whole generation (see Schedule.left_alone)
        self.per_block = False  # whether this call sums block residuals (see Adapter.block_image)
        self.x_last: torch.Tensor | None = None  # the stack input of the last call (see tap.trajectory)
        self.change_last: torch.Tensor | None = None  # [B] how far the stack input moved at that call
        self.jumped: torch.Tensor | None = None  # whether x jumped since the last predicted step (see tap.trajectory)

    def forget_history(self) -> None:
        """Drop the cached full steps but stay in the generation: the trajectory they forecast no longer holds."""
        self.cached_steps, self.r, self.h, self.gram, self.jumped = (), None, None, None, None

    def push(self, step: int, h: torch.Tensor | None, r: torch.Tensor, keep: int) -> None:
        """Cache one full step, keeping the last ``keep``; a residual of another shape starts the history over."""
        if self.r is not None and self.r.shape[1:] != r.shape:
            self.cached_steps, self.r, self.h, self.gram = (), None, None, None
        self.cached_steps = (*self.cached_steps, step)[-keep:]
        self.r = _append(self.r, r, keep)
        self.h = _append(self.h, h, keep) if h is not None else None
        self.counters.cache_bytes = max(self.counters.cache_bytes, self.cache_bytes)

    @property
    def cache_bytes(self) -> int:
        tensors = (self.h, self.r, self.gram)
        return sum(t.numel() * t.element_size() for t in tensors if t is not None)


def _append(stack: torch.Tensor | None, item: torch.Tensor, keep: int) -> torch.Tensor:
    item = item.unsqueeze(0)
    if stack is None or stack.shape[1:] != item.shape[1:]:
        return item
    return torch.cat([stack[-(keep - 1) :], item]) if keep > 1 else item


class ContextStates(StateManager):
    """diffusers' StateManager, which ``transformer.cache_context(name)`` switches, with a default
    context for pipelines and loops that set none."""

    def __init__(self) -> None:
        super().__init__(GenerationState)
        self._sample: int | None = None
        self.slot = 0  # which call of its step this is, when no cache context names the calls (see Runtime)

    @contextlib.contextmanager
    def sample(self, index: int):
        """Within the block, the state of sample group ``index`` of the batch (see :mod:`tap.samples`)."""
        self._sample = index
        try:
            yield
        finally:
            self._sample = None

    @property
    def context_name(self) -> str:
        """The name of the cache context diffusers set around this call, or the default context's."""
        context = self.current
        return (context if isinstance(context, str) else getattr(context, "name", None)) or DEFAULT_CONTEXT

    def get_state(self) -> GenerationState:
        name = self.context_name
        if self.slot:
            name = f"{name}/call {self.slot + 1}"
        if self._sample is not None:
            name = f"{name}/sample {self._sample}"
        cache = state_cache(self)
        if name not in cache:
            cache[name] = GenerationState()
        return cache[name]

    @property
    def current(self):
        """The cache context diffusers set around this call (a ``CacheContext``, or its name on diffusers'
        main branch), or None."""
        return cache_context(self)

    def states(self) -> dict[str, GenerationState]:
        return dict(state_cache(self))

    def reset(self) -> None:
        """End every context's generation (see :meth:`GenerationState.reset`)."""
        for state in state_cache(self).values():
            state.reset()
