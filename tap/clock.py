"""Where a generation stands (step index, step count, which run it is), read without a host sync.

A pipeline tells tap more than the transformer call does: its scheduler makes a new
``timesteps`` tensor at every ``set_timesteps`` (so each pipeline call is a new run, even after
an interrupted one), counts its steps (``step_index``, shared by a two-expert pipeline's
experts) and knows the step count. diffusers' ``cache_context(name, step_index=i,
num_inference_steps=n)`` can say the same in a hand-written loop. Without either, the runtime
counts calls and watches the timestep itself.
"""

from __future__ import annotations

from typing import Any


class StepClock:
    """Reads a scheduler (optional) and the cache context diffusers sets around each call."""

    def __init__(self, scheduler: Any = None) -> None:
        self.scheduler = scheduler

    def run_marker(self) -> Any:
        """An object that changes when a new run of the sampler starts: the scheduler's timesteps tensor."""
        return getattr(self.scheduler, "timesteps", None)

    def step_index(self, context: Any) -> int | None:
        """The sampler's index of this step, or None when neither the context nor a scheduler tells it."""
        index = getattr(context, "step_index", None)
        if index is not None or self.scheduler is None or not hasattr(self.scheduler, "step_index"):
            return index
        index = self.scheduler.step_index
        if index is None:  # before the first scheduler.step of a run
            index = getattr(self.scheduler, "begin_index", None) or 0
        return index

    def num_steps(self, context: Any) -> int | None:
        """The run's step count, when the context or the scheduler tells it."""
        count = getattr(context, "num_inference_steps", None)
        if count is not None:
            return count
        timesteps = self.run_marker()
        return len(timesteps) if timesteps is not None else None
