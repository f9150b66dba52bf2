"""The model-agnostic engine: per step, run the block stack in full or predict its residual.

Full step: run every block, cache (step, h, r = f(x) - x). Predicted step: probe h, score every
active candidate from inner products with the cached h (no candidate is materialised), let the
selector choose per token, and assemble r_hat for each token from its chosen candidate's
weights as one weighted sum. The adapter's hooks call :meth:`Runtime.enter` at the first block,
:meth:`Runtime.passthrough` or :meth:`Runtime.exit` at the others.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, Callable

import attrs
import torch

from tap.adapter import argument
from tap.clock import StepClock
from tap.config import TAPConfig
from tap.distance import GramStats
from tap.errors import PluginGuard
from tap.parallel import NO_SHARDS, TokenShards, using_shards
from tap.samples import sample_groups
from tap.family import ActiveSet, active_set
from tap.plugins import registry
from tap.probe import BlockCall, ProbeResult
from tap.registry import instantiate
from tap.schedule import Schedule, StepView
from tap.state import ContextStates, Counters, GenerationState
from tap import trajectory

FullStepObserver = Callable[[str, int, torch.Tensor], None]  # (cache context, step index, the stack's residual)
ACTIVE_SET_CACHE_LIMIT = 4096
ONE_STEP_GENERATIONS = 3  # one-call generations in a row before tap says that it never predicts


@attrs.frozen
class DeviceActiveSet:
    """An :class:`ActiveSet` with its weights and family indices already on the features' device."""

    active: ActiveSet
    weights: torch.Tensor | None  # [C, H] in the cache dtype
    family_index: torch.Tensor  # [C] long


class StepEvaluation:
    """One step's probe, proxy losses and per-token choice, each computed once and only when asked.

    A probe-driven schedule reads :meth:`probe_error` or :meth:`probe_change` before deciding; a fixed selector never
    probes at all.
    """

    def __init__(self, runtime: Runtime, state: GenerationState, call: BlockCall, x: torch.Tensor, device_set: DeviceActiveSet) -> None:
        self.runtime, self.state, self.call, self.x, self.device_set = runtime, state, call, x, device_set
        self.probed: ProbeResult | None = None

    @functools.cached_property
    def h(self) -> torch.Tensor:
        with self.runtime.guards.probe:
            self.probed = self.runtime.probe(self.runtime.adapter, self.call)
        return self.probed.h.to(self.runtime.cache_dtype)

    @functools.cached_property
    def choice(self) -> torch.Tensor:
        runtime, x = self.runtime, self.x
        if not runtime.selects:  # one candidate: nothing to choose, nothing to probe
            return torch.zeros(x.shape[:2], dtype=torch.long, device=x.device)
        losses = runtime.losses(self.state, self.device_set, self.h) if runtime.selector.needs_losses else None
        shape, mine = tuple(x.shape[:2]), slice(None)
        if losses is not None and runtime.shards.active and not runtime.selector.per_token:
            losses, mine = runtime.shards.gather(losses)  # choose as one process would, keep this rank's tokens
            shape = tuple(losses.shape[1:])
        with runtime.guards.selector:
            choice = runtime.selector.select(losses, self.device_set.active.labels, shape)[..., mine].to(x.device)
        if choice.shape[-1] < x.shape[1]:  # tokens of other streams, which the probe does not see: the first candidate
            choice = torch.nn.functional.pad(choice, (0, x.shape[1] - choice.shape[-1]))
        return choice

    def probe_change(self) -> float:
        """Mean over tokens of ||h - h_last|| / ||h_last||: how far the probe moved since the last full step."""
        last = self.state.h[-1]
        change = (self.h - last).norm(dim=-1) / last.norm(dim=-1).clamp_min(1e-12)
        return float(self.runtime.shards.mean(change).mean())

    def probe_error(self) -> float:
        """Mean over tokens of ||h_hat - h|| / ||h|| for each token's chosen candidate: how well the cache predicts now."""
        predicted = self.runtime.assemble(self.state, self.device_set, self.choice[..., : self.h.shape[1]], self.state.h)
        error = (predicted - self.h).norm(dim=-1) / self.h.norm(dim=-1).clamp_min(1e-12)
        return float(self.runtime.shards.mean(error).mean())


class RuntimeGuards:
    """One :class:`PluginGuard` per plugin kind the runtime calls, named after the config's choice."""

    def __init__(self, config: TAPConfig, family) -> None:
        self.probe = PluginGuard("probe", config.probe)
        self.distance = PluginGuard("distance", config.distance)
        self.selector = PluginGuard("selector", config.selector)
        self.schedule = PluginGuard("schedule", config.schedule)
        self.predictor = PluginGuard("predictor", ", ".join(candidate.label for candidate in family))


def build_schedule(config: TAPConfig) -> Schedule:
    """The schedule plugin named by ``config``, built from its interval, warm-up and options."""
    return registry().get("schedule", config.schedule).cls.from_config(config)


class Runtime:
    """Owns the plugins chosen by a :class:`TAPConfig` and the per-context generation state."""

    def __init__(self, adapter, blocks: list[torch.nn.Module], config: TAPConfig, clock: StepClock):
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
        self.schedule = build_schedule(config)
        self.cache_dtype = config.torch_cache_dtype
        self.clock = clock
        self.states = ContextStates()
        self._active_sets: dict[tuple, DeviceActiveSet] = {}
        self._warned: set[str] = set()  # candidates and messages already reported
        self._warned_disagreement = False  # whether ranks deciding differently was reported
        self.guards = RuntimeGuards(config, self.family)
        self.shards = NO_SHARDS  # this rank's share of the tokens under context parallelism
        self._one_step_generations = 0  # generations in a row that ended after one call
        self._observers: list[FullStepObserver] = []
        self._last_call: tuple | None = None  # (step index or timestep, run marker) of the last call without a context
        self.sums_blocks = adapter.residual_per_block or bool(adapter.adds_between_blocks)

    # -- per call of the transformer -------------------------------------------------------------
    def begin_step(self, args: tuple, kwargs: dict) -> bool:
        """Count a transformer call; True when it starts a new generation.

        A generation ends when the sampler starts a new run, its step index does not move forward,
        the latent shape changes, or (when no step index is known) the timestep jumps back up. With
        no cache context, calls at the same step (classifier-free guidance as two calls) are told
        apart by their order within the step, and each keeps its own state.
        """
        context = self.states.current
        read: list[float | None] = []  # the call's timestep, read at most once (reading it may sync a GPU)

        def timestep_of_call() -> float | None:
            if not read:
                read.append(self.adapter.generation_key(args, kwargs)[0])
            return read[0]

        marker, index = self.clock.run_marker(), self.clock.step_index(context, timestep_of_call)
        timestep = timestep_of_call() if index is None else None
        self.states.slot = self._slot(context, index if index is not None else timestep, marker)
        state = self.states.get_state()
        latents = argument(args, kwargs, *self.adapter.hidden_states_argument)
        shape = tuple(latents.shape) if isinstance(latents, torch.Tensor) else ()
        if index is None:
            moved_back = state.timestep is not None and timestep is not None and timestep > state.timestep
        else:
            moved_back = index <= state.step
        if state.step >= 0 and (moved_back or marker is not state.marker or shape != state.shape):
            state.reset()
        new_generation = state.step < 0
        if new_generation:
            state.first_step = 0 if index is None else index
            self._note_generation_length(state.counters.steps)
            state.counters = Counters()  # a finished generation's counters give way to the new one
        state.step = state.step + 1 if index is None else index
        state.marker, state.shape, state.timestep = marker, shape, timestep
        state.skipping = False
        state.pending = state.block_residuals = None
        state.full_reason = self.adapter.full_compute_reason(args, kwargs)
        if new_generation:
            count = self.clock.num_steps(context)
            with self.guards.schedule:
                state.left_alone = state.counters.left_alone = self.schedule.left_alone(None if count is None else count - state.first_step)
        state.per_block = self.sums_blocks and self.adapter.sums_block_residuals(args, kwargs)
        state.counters.steps += 1
        return new_generation

    def _slot(self, context: Any, position: Any, marker: Any) -> int:
        """Which call of its step this is (0, 1, ...) when no cache context names it; 0 otherwise."""
        if context is not None or position is None:
            self._last_call = None
            return 0
        same_step = self._last_call is not None and self._last_call[0] == position and self._last_call[1] is marker
        self._last_call = (position, marker)
        return self.states.slot + 1 if same_step else 0

    def sample_groups(self, args: tuple, kwargs: dict) -> list[torch.Tensor] | None:
        """The batch's sample groups when a probe-driven schedule decides per sample and there are several."""
        if not (self.config.per_sample and self.schedule.uses_probe):
            return None
        if not self.adapter.per_sample_calls:
            self._say_once(f"{type(self.adapter).__name__} cannot split a batch into per-sample calls; the schedule decides once per batch")
            return None
        latents = argument(args, kwargs, *self.adapter.hidden_states_argument)
        if not isinstance(latents, torch.Tensor) or latents.shape[0] < 2:
            return None
        groups = sample_groups(latents)
        return groups if len(groups) > 1 else None

    def split_tokens_over(self, group: Any) -> None:
        """Reduce decisions over ``group``, the process group context parallelism splits the tokens over (None: none)."""
        if group is not self.shards.group:
            self.shards = TokenShards(group)

    def reset(self) -> None:
        """End every context's generation (drop caches): the next call starts a new one. Statistics stay."""
        self.states.reset()

    def reset_stats(self) -> None:
        """Zero every context's statistics; the generations and their caches go on."""
        for state in self.states.states().values():
            state.counters = Counters()

    def invalidate(self) -> None:
        """Forget every context's forecast history but stay in its generation: its next steps run in full."""
        for state in self.states.states().values():
            state.forget_history()

    # -- per block ---------------------------------------------------------------------------------
    def enter(self, call: BlockCall) -> Any:
        """The first block is about to run: decide the step and return the block's output."""
        if self.shards.active:
            with using_shards(self.shards):
                return self._enter(call)
        return self._enter(call)

    def _enter(self, call: BlockCall) -> Any:
        state = self.states.get_state()
        untouched = state.left_alone if state.full_reason is None else state.full_reason + "; such steps run every block"
        if untouched is not None:  # run every block, and keep the step out of the forecast's history
            self._say_once(untouched)
            state.counters.full_steps += 1
            state.counters.blocks_run += len(self.blocks)
            return call()
        x = self.adapter.stack_input(call.args, call.kwargs)
        if self.config.trajectory_guard:
            trajectory.watch(state, x, self.shards)
        if not state.cached_steps or state.r.shape[1:] != x.shape:
            return self._full(state, call, None, x)  # nothing to forecast from: no history, or the tokens changed
        device_set = self._device_active_set(state, x.device)
        if not device_set.active.indices:
            return self._full(state, call, None, x)
        evaluation = StepEvaluation(self, state, call, x, device_set)
        view = StepView(
            state.step, self.clock.num_steps(self.states.current), state.cached_steps[-1], len(state.cached_steps),
            evaluation if self.schedule.uses_probe else None, state.first_step,
        )
        with self.guards.schedule:
            full = self.schedule.is_full(view)
        if self.schedule.uses_probe and self.shards.active:
            full = self._agreed(full, x.device)
        if full:
            return self._full(state, call, evaluation, x)
        return self._predicted(state, call, evaluation, x)

    def passthrough(self, block: torch.nn.Module, args: tuple, kwargs: dict) -> Any | None:
        """A later block on a predicted step returns its inputs unchanged; None means run it."""
        if not self.states.get_state().skipping:
            return None
        return self.adapter.skip_block(block, args, kwargs)

    def after_block(self, block: torch.nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        """A block after the first ran: on a full step add its own residual (adapters with ``residual_per_block``)."""
        state = self.states.get_state()
        if state.block_residuals is not None:
            adapter = self.adapter
            state.block_residuals.add_(adapter.block_output_image(block, output).to(self.cache_dtype))
            state.block_residuals.sub_(adapter.block_image(block, args, kwargs).to(self.cache_dtype))

    def residual(self, state: GenerationState, output: Any) -> torch.Tensor:
        """The stack's residual of the full step in flight, given the last block's output."""
        if state.block_residuals is not None:
            return state.block_residuals
        return self.adapter.stack_output(output).to(self.cache_dtype) - state.pending[0].to(self.cache_dtype)

    def exit(self, output: Any) -> None:
        """The last block ran: on a full step cache r = f(x) - x."""
        state = self.states.get_state()
        if state.pending is None:
            return
        r = self.residual(state, output)
        h = state.pending[1]
        state.pending = None
        state.block_residuals = None
        state.push(state.step, h, r, self.keep)
        if state.h is not None:
            state.gram = GramStats.gram_of(state.h)
        for observer in self._observers:
            observer(self.states.context_name, state.step, r)

    def observe(self, observer: FullStepObserver) -> Callable[[], None]:
        """Call ``observer(context, step, residual)`` after each full step; returns the function that stops it.

        How tools outside the runtime (``tap.plan``, research scripts) see the residuals it computes,
        without patching its methods; with no observer the runtime does no extra work.
        """
        self._observers.append(observer)
        return lambda: self._observers.remove(observer)

    @property
    def selects(self) -> bool:
        """Whether there is a choice to make: more than one candidate in the family."""
        return len(self.family) > 1

    @property
    def needs_probe(self) -> bool:
        """Whether steps are probed at all: for the selector's losses or for a probe-driven schedule."""
        return (self.selects and self.selector.needs_losses) or self.schedule.uses_probe

    # -- the two kinds of step ---------------------------------------------------------------------
    def _full(self, state: GenerationState, call: BlockCall, evaluation: StepEvaluation | None, x: torch.Tensor) -> Any:
        result = evaluation.probed if evaluation is not None else None
        if result is None and self.needs_probe:
            with self.guards.probe:
                result = self.probe(self.adapter, call)
        output = call() if result is None or result.block_output is None else result.block_output
        h = None if result is None else result.h.to(self.cache_dtype)
        state.pending = (x, h)
        if state.per_block:
            state.block_residuals = self.adapter.block_output_image(call.block, output).to(self.cache_dtype) - x.to(self.cache_dtype)
        state.counters.full_steps += 1
        state.counters.blocks_run += len(self.blocks)
        if len(self.blocks) == 1:
            self.exit(output)
        return output

    def _predicted(self, state: GenerationState, call: BlockCall, evaluation: StepEvaluation, x: torch.Tensor) -> Any:
        r_hat, choice = self.assemble(state, evaluation.device_set, evaluation.choice, state.r), evaluation.choice
        finite, left = self._read_checks(r_hat, state.jumped)  # the one host sync tap makes per step
        state.jumped = None
        if left:
            return self._restart(state, call, evaluation, x)
        if not finite:
            r_hat, choice = self._finite_choice(state, evaluation)
        if self.config.check_finite:
            fall_back = self.shards.agree(r_hat is None, x.device)[0]  # every rank falls back together, or none does
            if fall_back:
                state.counters.fallbacks += 1
                return self._full(state, call, evaluation, x)
        probe_blocks = int(evaluation.probed is not None and self.probe.runs_first_block)
        self._count(state, evaluation.device_set, choice, probe_blocks)
        state.skipping = True
        hidden = (x.to(self.cache_dtype) + r_hat).to(x.dtype)
        return self.adapter.skip_output(call.args, call.kwargs, hidden)

    def _read_checks(self, r_hat: torch.Tensor, jumped: torch.Tensor | None) -> tuple[bool, bool]:
        """(whether r_hat is finite, whether the trajectory was left), read from the device in one sync, and only
        what is checked: nothing at all with check_finite and the guard both off."""
        checks = []
        if self.config.check_finite:
            checks.append(torch.isfinite(r_hat).all())
        if jumped is not None:
            checks.append(jumped)
        if not checks:
            return True, False
        read = torch.stack(checks).tolist()
        return (read[0] if self.config.check_finite else True), (read[-1] if jumped is not None else False)

    def _restart(self, state: GenerationState, call: BlockCall, evaluation: StepEvaluation, x: torch.Tensor) -> Any:
        """The latents left the trajectory the cache describes: forget it, compute this step in full, say so once."""
        state.forget_history()
        state.counters.restarts += 1
        self._say_once(
            "the latents jumped off their trajectory between two steps (a callback that edits them?); the forecast "
            "started over from a full step (counted in tap.stats(...).restarts). Call handle.invalidate() in such a "
            "callback to say so directly"
        )
        return self._full(state, call, evaluation, x)

    # -- pieces ------------------------------------------------------------------------------------
    def _device_active_set(self, state: GenerationState, device: torch.device) -> DeviceActiveSet:
        key = (state.cached_steps, state.step, device)
        found = self._active_sets.get(key)
        if found is None:
            if len(self._active_sets) >= ACTIVE_SET_CACHE_LIMIT:
                self._active_sets.clear()
            with self.guards.predictor:
                active = active_set(self.family, state.cached_steps, state.step)
            weights = None if active.weights is None else active.weights.to(device, self.cache_dtype)
            found = DeviceActiveSet(active, weights, torch.tensor(active.indices, dtype=torch.long, device=device))
            self._active_sets[key] = found
        return found

    def _steps_tensor(self, state: GenerationState) -> torch.Tensor:
        return torch.tensor(state.cached_steps, dtype=torch.float64)

    def losses(self, state: GenerationState, device_set: DeviceActiveSet, h: torch.Tensor) -> torch.Tensor:
        """[C, B, N] each active candidate's proxy loss per token: how far its forecast of the probe is from ``h``."""
        if device_set.weights is not None:
            with self.guards.distance:
                losses = self.distance.from_gram(device_set.weights, GramStats.of(state.h, state.gram, h))
            if losses is not None:
                return losses
        steps = self._steps_tensor(state)
        with self.guards.predictor:
            predicted = torch.stack(
                [p.predict(steps, state.h, t) for p, t in zip(device_set.active.predictors, device_set.active.targets)]
            )
        with self.guards.distance:
            return self.distance(predicted, h, state.h[-1])

    def assemble(self, state: GenerationState, device_set: DeviceActiveSet, choice: torch.Tensor, cached: torch.Tensor) -> torch.Tensor:
        """Each token's prediction of ``cached`` [H, B, N, D] (r or h) by its chosen candidate."""
        if device_set.weights is not None:
            # sum_j w[choice, j] * cached_j as fused multiply-adds: far cheaper than a batched einsum.
            weights = device_set.weights[choice]  # [B, N, H]
            predicted = weights[..., 0, None] * cached[0]
            for j in range(1, cached.shape[0]):
                predicted.addcmul_(weights[..., j, None], cached[j])
            return predicted
        steps = self._steps_tensor(state)
        predicted = torch.zeros_like(cached[-1])
        with self.guards.predictor:
            for index in choice.unique().tolist():
                predictor, target = device_set.active.predictors[index], device_set.active.targets[index]
                predicted = torch.where((choice == index)[..., None], predictor.predict(steps, cached, target), predicted)
        return predicted

    def _agreed(self, full: bool, device: torch.device) -> bool:
        """A probe-driven decision made the same on every rank: full if any rank wants it, and said once if they differed."""
        full, disagreed = self.shards.agree(full, device)
        if disagreed and not self._warned_disagreement:
            self._warned_disagreement = True
            warnings.warn(
                f"tap: schedule {self.config.schedule!r} decided differently on the context-parallel ranks; the step "
                "ran in full on all of them. A plugin that aggregates over tokens should use tap.parallel.token_mean",
                RuntimeWarning, stacklevel=2,
            )
        return full

    def _note_generation_length(self, steps: int) -> None:
        """Say once when calls keep starting new generations: then nothing is ever predicted."""
        self._one_step_generations = self._one_step_generations + 1 if steps == 1 else 0
        if self._one_step_generations == ONE_STEP_GENERATIONS:
            self._say_once(
                f"the last {ONE_STEP_GENERATIONS} transformer calls each started a new generation, so no step was "
                "predicted: the step index did not move forward (a scheduler that is never stepped?) or, with no step "
                "index, the timestep rose (a sampler whose time runs upwards?). Call the transformer through its "
                "pipeline, or inside cache_context(name, step_index=i, num_inference_steps=n) with i counting up"
            )

    def _say_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            warnings.warn(f"tap: {message}", RuntimeWarning, stacklevel=3)

    def _finite_choice(self, state: GenerationState, evaluation: StepEvaluation):
        """(r_hat, choice) with each token whose chosen candidate predicted a non-finite value there given the
        finite candidate it scores best on (the first finite one when nothing is scored); (None, None) when a
        token has no finite candidate. Reports each non-finite candidate once."""
        device_set, choice = evaluation.device_set, evaluation.choice
        candidates = len(device_set.active.indices)
        finite = torch.stack([
            torch.isfinite(self.assemble(state, device_set, torch.full_like(choice, c), state.r)).all(dim=-1) for c in range(candidates)
        ])  # [C, B, N]
        self._report_non_finite(state, [int(device_set.family_index[c]) for c in range(candidates) if not bool(finite[c].all())])
        if not bool(finite.any(dim=0).all()):
            return None, None
        if self.selector.needs_losses and evaluation.probed is not None:
            scores = self.losses(state, device_set, evaluation.h)[..., : choice.shape[-1]]
            scores = torch.nn.functional.pad(scores, (0, choice.shape[-1] - scores.shape[-1]))  # tokens the probe does not see
        else:
            scores = torch.arange(candidates, dtype=torch.float32, device=choice.device)[:, None, None].expand_as(finite)
        scores = torch.where(finite, scores.to(torch.float32), torch.inf)
        kept = finite.gather(0, choice[None])[0]
        choice = torch.where(kept, choice, scores.argmin(dim=0))
        return self.assemble(state, device_set, choice, state.r), choice

    def _report_non_finite(self, state: GenerationState, family_indices: list[int]) -> None:
        """Count the step for each candidate that predicted a non-finite value, and warn once per candidate."""
        for index in family_indices:
            label = self.family[index].label
            state.counters.non_finite[label] = state.counters.non_finite.get(label, 0) + 1
        labels = [self.family[index].label for index in family_indices if self.family[index].label not in self._warned]
        if labels:
            self._warned.update(labels)
            warnings.warn(
                f"tap: candidate {', '.join(labels)} predicted non-finite values at step {state.step}; the tokens that "
                "chose it use the best finite candidate instead, and a step with no finite candidate for some token is "
                "computed in full (counted in tap.stats(...).fallbacks)",
                RuntimeWarning, stacklevel=3,
            )

    def _count(self, state: GenerationState, device_set: DeviceActiveSet, choice: torch.Tensor, probe_blocks: int):
        counters = state.counters
        counters.predicted_steps += 1
        counters.blocks_run += probe_blocks
        counters.blocks_skipped += len(self.blocks) - probe_blocks
        used = self.shards.sum(torch.bincount(device_set.family_index[choice].flatten(), minlength=len(self.family)))
        counters.candidate_tokens = used if counters.candidate_tokens is None else counters.candidate_tokens + used
