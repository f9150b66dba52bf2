"""The model-agnostic engine: per step, run the block stack in full or predict its residual.

Full step: run every block, cache (step, h, r = f(x) - x). Predicted step: probe h, score every
active candidate from inner products with the cached h (no candidate is materialised), let the
selector choose per token, and assemble r_hat for each token from its chosen candidate's
weights as one weighted sum. The adapter's hooks call :meth:`Runtime.enter` at the first block,
:meth:`Runtime.passthrough` or :meth:`Runtime.exit` at the others.
"""

from __future__ import annotations

from typing import Any, Callable

import attrs
import torch

from tap.config import TAPConfig
from tap.distance import GramStats
from tap.family import ActiveSet, active_set
from tap.plugins import registry
from tap.probe import BlockCall
from tap.registry import instantiate
from tap.schedule import StepView
from tap.state import ContextStates, GenerationState

ACTIVE_SET_CACHE_LIMIT = 4096


@attrs.frozen
class DeviceActiveSet:
    """An :class:`ActiveSet` with its weights and family indices already on the features' device."""

    active: ActiveSet
    weights: torch.Tensor | None  # [C, H] in the cache dtype
    family_index: torch.Tensor  # [C] long


class Runtime:
    """Owns the plugins chosen by a :class:`TAPConfig` and the per-context generation state."""

    def __init__(self, adapter, blocks: list[torch.nn.Module], config: TAPConfig, num_steps: Callable[[], int | None]):
        plugins = registry()

        def build(kind: str, name: str, params=None):
            return instantiate(kind, plugins.get(kind, name).cls, name, dict(params or {}))

        self.adapter = adapter
        self.blocks = blocks
        self.config = config
        self.family = config.family()
        self.keep = max(c.predictor.history for c in self.family)
        self.probe = build("probe", config.probe)
        self.distance = build("distance", config.distance)
        self.selector = build("selector", config.selector, config.selector_options)
        self.schedule = plugins.get("schedule", config.schedule).cls.from_config(config)
        self.cache_dtype = config.torch_cache_dtype
        self.num_steps = num_steps
        self.states = ContextStates()
        self._active_sets: dict[tuple, DeviceActiveSet] = {}

    # -- per call of the transformer -------------------------------------------------------------
    def begin_step(self, args: tuple, kwargs: dict) -> None:
        """Count a transformer call; a timestep that jumps back up or a new shape starts a new generation."""
        state = self.states.get_state()
        timestep, shape = self.adapter.generation_key(args, kwargs)
        restarted = state.timestep is not None and timestep is not None and timestep > state.timestep
        if state.step >= 0 and (restarted or shape != state.shape):
            state.reset()
        state.step += 1
        state.timestep, state.shape = timestep, shape
        state.skipping = False
        state.pending = None
        state.counters.steps += 1

    def abort(self) -> None:
        """Drop the current context's generation after an exception, so the next call starts clean."""
        self.states.get_state().reset()

    def reset(self) -> None:
        """Forget every context's generation."""
        self.states.clear()

    # -- per block ---------------------------------------------------------------------------------
    def enter(self, call: BlockCall) -> Any:
        """The first block is about to run: decide the step and return the block's output."""
        state = self.states.get_state()
        if state.cached_steps:
            view = StepView(state.step, self.num_steps(), state.cached_steps[-1], len(state.cached_steps))
            if not self.schedule.is_full(view):
                device_set = self._device_active_set(state, call)
                if device_set.active.indices:
                    return self._predicted(state, call, device_set)
        return self._full(state, call)

    def passthrough(self, args: tuple, kwargs: dict) -> Any | None:
        """A later block on a predicted step returns its inputs unchanged; None means run it."""
        if not self.states.get_state().skipping:
            return None
        return self.adapter.skip_output(args, kwargs, self.adapter.stack_input(args, kwargs))

    def exit(self, output: Any) -> None:
        """The last block ran: on a full step cache r = f(x) - x."""
        state = self.states.get_state()
        if state.pending is None:
            return
        x, h = state.pending
        state.pending = None
        r = self.adapter.stack_output(output).to(self.cache_dtype) - x.to(self.cache_dtype)
        state.push(state.step, h, r, self.keep)
        if state.h is not None:
            state.gram = GramStats.gram_of(state.h)

    # -- the two kinds of step ---------------------------------------------------------------------
    def _full(self, state: GenerationState, call: BlockCall) -> Any:
        x = self.adapter.stack_input(call.args, call.kwargs)
        h = None
        if self.probe.runs_first_block:
            result = self.probe(self.adapter, call)
            output, h = result.block_output, result.h
        else:
            if self.selector.needs_losses:
                h = self.probe(self.adapter, call).h
            output = call()
        state.pending = (x, None if h is None else h.to(self.cache_dtype))
        state.counters.full_steps += 1
        state.counters.blocks_run += len(self.blocks)
        if len(self.blocks) == 1:
            self.exit(output)
        return output

    def _predicted(self, state: GenerationState, call: BlockCall, device_set: DeviceActiveSet) -> Any:
        x = self.adapter.stack_input(call.args, call.kwargs)
        losses = None
        probe_blocks = 0
        if self.selector.needs_losses:
            h = self.probe(self.adapter, call).h.to(self.cache_dtype)
            probe_blocks = int(self.probe.runs_first_block)
            losses = self._losses(state, device_set, h)
        choice = self.selector.select(losses, device_set.active.labels, tuple(x.shape[:2])).to(x.device)
        r_hat = self._assemble(state, device_set, choice)
        self._count(state, device_set, choice, probe_blocks)
        state.skipping = True
        hidden = (x.to(self.cache_dtype) + r_hat).to(x.dtype)
        return self.adapter.skip_output(call.args, call.kwargs, hidden)

    # -- pieces ------------------------------------------------------------------------------------
    def _device_active_set(self, state: GenerationState, call: BlockCall) -> DeviceActiveSet:
        device = self.adapter.stack_input(call.args, call.kwargs).device
        key = (state.cached_steps, state.step, device)
        found = self._active_sets.get(key)
        if found is None:
            if len(self._active_sets) >= ACTIVE_SET_CACHE_LIMIT:
                self._active_sets.clear()
            active = active_set(self.family, state.cached_steps, state.step)
            weights = None if active.weights is None else active.weights.to(device, self.cache_dtype)
            found = DeviceActiveSet(active, weights, torch.tensor(active.indices, dtype=torch.long, device=device))
            self._active_sets[key] = found
        return found

    def _steps_tensor(self, state: GenerationState) -> torch.Tensor:
        return torch.tensor(state.cached_steps, dtype=torch.float64)

    def _losses(self, state: GenerationState, device_set: DeviceActiveSet, h: torch.Tensor) -> torch.Tensor:
        if device_set.weights is not None:
            losses = self.distance.from_gram(device_set.weights, GramStats.of(state.h, state.gram, h))
            if losses is not None:
                return losses
        steps = self._steps_tensor(state)
        predicted = torch.stack(
            [p.predict(steps, state.h, t) for p, t in zip(device_set.active.predictors, device_set.active.targets)]
        )
        return self.distance(predicted, h, state.h[-1])

    def _assemble(self, state: GenerationState, device_set: DeviceActiveSet, choice: torch.Tensor) -> torch.Tensor:
        if device_set.weights is not None:
            # r_hat = sum_j w[choice, j] * r_j as fused multiply-adds: far cheaper than a batched einsum.
            weights = device_set.weights[choice]  # [B, N, H]
            r_hat = weights[..., 0, None] * state.r[0]
            for j in range(1, state.r.shape[0]):
                r_hat.addcmul_(weights[..., j, None], state.r[j])
            return r_hat
        steps = self._steps_tensor(state)
        r_hat = torch.zeros_like(state.r[-1])
        for index in choice.unique().tolist():
            predictor, target = device_set.active.predictors[index], device_set.active.targets[index]
            r_hat = torch.where((choice == index)[..., None], predictor.predict(steps, state.r, target), r_hat)
        return r_hat

    def _count(self, state: GenerationState, device_set: DeviceActiveSet, choice: torch.Tensor, probe_blocks: int):
        counters = state.counters
        counters.predicted_steps += 1
        counters.blocks_run += probe_blocks
        counters.blocks_skipped += len(self.blocks) - probe_blocks
        used = torch.bincount(device_set.family_index[choice].flatten(), minlength=len(self.family))
        counters.candidate_tokens = used if counters.candidate_tokens is None else counters.candidate_tokens + used
