"""Where a generation stands (step index, step count, which run it is), read without a host sync.

A pipeline tells tap more than the transformer call does: its scheduler makes a new
``timesteps`` tensor at every ``set_timesteps`` (so each pipeline call is a new run, even after
an interrupted one), counts its steps (``step_index``, shared by a two-expert pipeline's
experts) and knows the step count. diffusers' ``cache_context(name, step_index=i,
num_inference_steps=n)`` can say the same in a hand-written loop. Without either, the runtime
counts calls and watches the timestep itself.
"""

from __future__ import annotations

from typing import Any, Callable

import torch


class StepClock:
    """Reads a scheduler (optional) and the cache context diffusers sets around each call."""

    def __init__(self, scheduler: Any = None) -> None:
        self.scheduler = scheduler

    def run_marker(self) -> Any:
        """An object that changes when a new run of the sampler starts: the scheduler's timesteps tensor."""
        return getattr(self.scheduler, "timesteps", None)

    def step_index(self, context: Any, timestep: Callable[[], float | None]) -> int | None:
        """The sampler's index of this step, or None when neither the context nor a scheduler tells it.

        Before the scheduler's first ``step`` of a run its index is the run's ``begin_index`` (set by
        image-to-image pipelines), else the place of this call's ``timestep()`` among the scheduler's
        timesteps, as the scheduler finds it at that first step: a video-to-video run that starts
        part-way without ``set_begin_index``, or a pipeline that steps copies of its scheduler
        (diffusion forcing), still gets the right index. A timestep the schedule does not hold
        (a transformer fed a rescaled timestep) gives None: tap then counts the calls.
        """
        index = getattr(context, "step_index", None)
        if index is not None or self.scheduler is None or not hasattr(self.scheduler, "step_index"):
            return index
        index = self.scheduler.step_index
        if index is None:
            index = getattr(self.scheduler, "begin_index", None)
        if index is None:
            index = self._index_of(timestep())
        return index

    def _index_of(self, timestep: float | None) -> int | None:
        """Where ``timestep`` sits among the run's timesteps, read as given or as given over 1000 (flow-matching
        pipelines feed t / 1000); where both readings match, the earlier step (a shift-1 schedule's last timestep
        is 1.0, which is also its first one, 1000, over 1000)."""
        timesteps = self.run_marker()
        if timestep is None or not isinstance(timesteps, torch.Tensor):
            return None
        schedule = timesteps.detach().cpu().double()
        matches = [int(found[0]) for value in (timestep, timestep * 1000.0) if len(found := (schedule == value).nonzero())]
        return min(matches) if matches else None

    def num_steps(self, context: Any) -> int | None:
        """The run's step count, when the context or the scheduler tells it."""
        count = getattr(context, "num_inference_steps", None)
        if count is not None:
            return count
        timesteps = self.run_marker()
        return len(timesteps) if timesteps is not None else None
