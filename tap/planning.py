"""``tap.plan``: place the full steps for one model, scheduler and step count from a calibration run.

One calibration run records, through tap's hooks, the block stack's residual r = f(x) - x at every
step of ordinary full-compute generations (every step computed, so the run is exactly the plain
model's). Their inner products over steps (a Gram matrix, summed over samples and cache contexts)
give the teacher-forced error of any linear forecast of r from any choice of earlier full steps.
A dynamic programme over every placement of the K full steps (the warm-up steps always full)
minimises a cost of those errors (``cost_model``, see :data:`COST_MODELS`): ``squared`` sums each
predicted step's squared error; ``coherent-euler`` takes, for each run of predicted steps between two
full steps, the squared norm of the run's error vectors summed with the sampler's step sizes
|sigma_s - sigma_s+1| as weights (the latent error an Euler sampler accumulates over the run);
``coherent-gain`` (the default) also weighs each step by the gain with which a latent error left there
reaches the end of the trajectory (:func:`x0_gain`: early steps count more). The sigmas are read from
the pipeline's scheduler while recording, or given as ``sigmas`` for a hand-written loop; without
them the step-weighted models fall back to ``squared``.
A family of several candidates is scored by, at each step, the candidate with the least
teacher-forced error there (what a global selector picks at best); a coherent cost sums those
candidates' error vectors. The plan then checks itself: it generates the calibration samples with
the placement and with tap's uniform grid of K full steps and keeps the placement only if it is closer
to the full-compute outputs by ``check_margin`` dB (:data:`DEFAULT_CHECK_MARGIN`). With ``refine``, it then
moves single full steps by one step while the calibration samples come closer (:mod:`tap.placement`), and
keeps the result if it is closer than where it started by ``check_margin`` too: tens of runs of the
calibration samples, and tuned to them (docs/research.md, the cost-model section, measures it held out).

Memory: the residuals of one generation are kept per cache context until it ends, subsampled to
at most ``tokens`` evenly spaced tokens per sample, in float64 (exact inner products): steps x
batch x tokens x width x 8 bytes, e.g. 50 x 1 x 1024 x 3072 x 8 = 1.26 GB for FLUX.1-dev at 4096
image tokens (one context; FLUX.1-dev uses no classifier-free guidance pass).
"""

from __future__ import annotations

import itertools
import time
import warnings
from typing import Any, Callable, Sequence

import attrs
import numpy as np
import torch

import tap
from tap.config import TAPConfig
from tap.errors import ConfigError
from tap.family import Candidate, active_set
from tap.placement import refine_placement
from tap.plugins import registry
from tap.predictor import LinearPredictor
from tap.psnr import capped_psnr

MAX_HISTORY = 3  # the DP's state is the last full steps: (steps + 1) ** (history + 1) entries
TOKENS = 1024  # residual tokens kept per sample for the cost model
COST_MODELS = {
    "squared": "each predicted step's squared teacher-forced error, summed",
    "coherent": "per run of predicted steps, the squared norm of the summed error vectors",
    "coherent-euler": "per run of predicted steps, the squared norm of the error vectors summed with the sampler's step sizes "
                      "|sigma_s - sigma_s+1| as weights (as a latent error adds up over Euler steps); 'squared' without sigmas",
    "coherent-gain": "as coherent-euler, each step's weight also times the gain x0_gain(sigma_s+1) with which a latent error "
                     "reaches the end of the trajectory (early steps weigh up to DATA_SCALE times more); flow-matching sigmas "
                     "(the default)",
}
DATA_SCALE = 4.0  # coherent-gain's Gaussian data scale (chosen on validation samples, docs/research-data/plan-cost-model.md)
# The default cost model and check margin: never below the squared model with no margin on the test samples of the
# 18 cases in docs/research.md's cost-model section, and up to 5.6 dB above it at linear sigmas.
DEFAULT_COST_MODEL = "coherent-gain"
DEFAULT_CHECK_MARGIN = 0.5  # dB
REFINE_MOVES = (-1, 1)  # how far the refinement moves a full step at a time


# -- recording -----------------------------------------------------------------------------------
class Recorder:
    """Accumulates the Gram matrix <r_s, r_t> of the block-stack residuals over steps, one generation at a time per context."""

    def __init__(self, num_steps: int, tokens: int | None) -> None:
        self.num_steps, self.tokens = num_steps, tokens
        self.gram = np.zeros((num_steps, num_steps))
        self.generations = 0
        self.sigmas: list[np.ndarray] = []  # the first num_steps + 1 sigmas of each generation whose scheduler tap could read
        self._open: dict[str, tuple[torch.Tensor, list[int]]] = {}  # context -> (residuals [steps, M], steps seen)

    def add_sigmas(self, sigmas: Any) -> None:
        """Note one generation's sampler sigmas (its scheduler's, read at its first step), when they cover the steps."""
        values = usable_sigmas(sigmas, self.num_steps)
        if values is not None:
            self.sigmas.append(values)

    def mean_sigmas(self) -> np.ndarray | None:
        """The sigmas [num_steps + 1] averaged over the generations that had them, or None."""
        return np.mean(self.sigmas, axis=0) if self.sigmas else None

    def add(self, context: str, step: int, r: torch.Tensor) -> None:
        """Record one step's residual [B, N, D] (subsampled over N) and its inner products with the earlier steps."""
        if step >= self.num_steps:
            raise ConfigError(f"run made a generation with more than num_steps={self.num_steps} steps; give num_steps as run samples")
        buffer, seen = self._open.get(context, (None, []))
        if seen and step <= seen[-1]:
            self._close(context)
            buffer, seen = None, []
        r = r.reshape(r.shape[0], -1, r.shape[-1])
        if self.tokens is not None and r.shape[1] > self.tokens:
            r = r[:, torch.linspace(0, r.shape[1] - 1, self.tokens, device=r.device).round().long()]
        r = r.reshape(-1).to(torch.float64)
        if buffer is None:
            buffer = torch.zeros(self.num_steps, r.numel(), dtype=torch.float64, device=r.device)
        buffer[step] = r
        seen.append(step)
        row = (buffer[: step + 1] @ r).cpu().numpy()  # steps not seen yet are zero rows
        self.gram[step, : step + 1] += row
        self.gram[:step, step] += row[:step]
        self._open[context] = (buffer, seen)

    def _close(self, context: str) -> None:
        _, seen = self._open.pop(context)
        if seen != list(range(self.num_steps)):
            raise ConfigError(
                f"run made a generation of {len(seen)} steps (steps {seen[0]}..{seen[-1]}), but num_steps={self.num_steps}: "
                "give num_steps as run samples"
            )
        self.generations += 1

    def finish(self) -> np.ndarray:
        """The Gram matrix over every complete generation; a ConfigError when none was recorded or one is incomplete."""
        for context in list(self._open):
            self._close(context)
        if not self.generations:
            raise ConfigError("run made no generation with the target: call the pipeline or transformer inside run")
        return self.gram


def float64_values(sigmas: Any) -> np.ndarray:
    """Sigmas (a tensor or a sequence of numbers) as a flat float64 array."""
    return np.asarray(sigmas.detach().to("cpu", torch.float64) if isinstance(sigmas, torch.Tensor) else sigmas, dtype=np.float64).reshape(-1)


def usable_sigmas(sigmas: Any, num_steps: int) -> np.ndarray | None:
    """The first ``num_steps + 1`` of a scheduler's sigmas (the final one included) as float64, or None when there are
    fewer, or they are not finite, or they do not move."""
    if sigmas is None:
        return None
    values = float64_values(sigmas)
    if len(values) < num_steps + 1:
        return None
    values = values[: num_steps + 1]
    return values if np.all(np.isfinite(values)) and np.diff(values).any() else None


def explicit_sigmas(sigmas: Any, num_steps: int) -> np.ndarray:
    """Sigmas given to tap.plan: exactly ``num_steps + 1`` finite values that move; a ConfigError otherwise."""
    try:
        values = float64_values(sigmas)
    except (TypeError, ValueError):
        raise ConfigError(f"sigmas must be a sequence of {num_steps + 1} numbers (the sampler's sigmas, the final one included)") from None
    if len(values) != num_steps + 1:
        raise ConfigError(f"sigmas must have num_steps + 1 = {num_steps + 1} values (the sampler's sigmas, the final one included), got {len(values)}")
    if usable_sigmas(values, num_steps) is None:
        raise ConfigError("sigmas must be finite and not all equal")
    return values


def record(target: Any, run: Callable[[], Any], num_steps: int, config: TAPConfig, tokens: int | None) -> tuple[Recorder, Any]:
    """Run ``run`` with tap computing every step, recording residuals; returns the finished recorder and run's outputs.

    The sampler's sigmas are read from the scheduler tap's clock reads (a pipeline's ``scheduler``) at each
    generation's first step; a hand-written loop has none (give them to :func:`make_plan` as ``sigmas``)."""
    recorder = Recorder(num_steps, tokens)
    handle = tap.enable(target, TAPConfig(interval=1, warmup=1, adapter=config.adapter))
    try:
        if len(handle.denoisers) > 1:
            raise ConfigError(f"tap.plan places the steps of one transformer; this pipeline has {', '.join(handle.denoisers)}")
        scheduler = handle.runtime.clock.scheduler

        def observe(context, step, residual):
            if step == 0 and scheduler is not None:
                recorder.add_sigmas(getattr(scheduler, "sigmas", None))
            recorder.add(context, step, residual.float())

        handle.runtime.observe(observe)
        with torch.no_grad():
            outputs = run()
    finally:
        handle.disable()
    recorder.finish()
    return recorder, outputs


# -- the cost model and the dynamic programme -----------------------------------------------------
@attrs.frozen
class StepCosts:
    """Teacher-forced squared error of the family's forecast of each step from each history of full steps.

    A family of several candidates scores each step by its best candidate there (what a global
    selector picks at best); steps run with the family's own history of the last full steps.
    """

    gram: np.ndarray = attrs.field(eq=False)
    family: tuple[Candidate, ...]
    step_weights: np.ndarray | None = attrs.field(default=None, eq=False)  # [N] factor on each step's error (research)

    @property
    def num_steps(self) -> int:
        return len(self.gram)

    @property
    def history(self) -> int:
        return max(c.predictor.history for c in self.family)

    def weights(self, cached: tuple[int, ...], targets) -> np.ndarray:
        """Each candidate's weights [T, C, H] over ``cached`` for each target; NaN rows for inactive candidates."""
        table = np.full((len(targets), len(self.family), len(cached)), np.nan)
        for row, target in enumerate(targets):
            active = active_set(self.family, tuple(int(s) for s in cached), int(target))
            if active.indices:
                table[row, list(active.indices)] = active.weights.numpy()
        return table

    def shift_invariant(self) -> bool:
        """Whether the family's weights depend on step differences only (tap's built-in predictors' do)."""
        probe = (0, 2, 3)[-self.history :]
        return np.allclose(self.weights(probe, [7]), self.weights(tuple(s + 5 for s in probe), [12]), equal_nan=True)

    def candidate_errors(self, cached: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Each candidate's squared errors [B, T, C] at ``targets`` [B, T] from ``cached`` [B, H] with ``weights``
        [B, T, C, H] (NaN for inactive candidates), times ``step_weights`` when given."""
        rows = self.gram[cached]  # [B, H, N]
        history = np.take_along_axis(rows, cached[:, None, :], axis=2)  # [B, H, H]
        cross = np.take_along_axis(rows, targets[:, None, :], axis=2)  # [B, H, T]
        own = self.gram[targets, targets]  # [B, T]
        quadratic = np.einsum("btch,bhk,btck->btc", weights, history, weights)
        linear = np.einsum("btch,bht->btc", weights, cross)
        error = quadratic - 2 * linear + own[..., None]
        if self.step_weights is not None:
            error = error * self.step_weights[targets][..., None]
        return error

    def errors(self, cached: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Squared errors [B, T] at ``targets`` [B, T] from ``cached`` [B, H] with ``weights`` [B, T, C, H]: the best
        active candidate's (inf where none is active)."""
        error = self.candidate_errors(cached, targets, weights)
        return np.where(np.isnan(error), np.inf, error).min(axis=2)

    def table(self) -> np.ndarray:
        """Cumulative errors C[state, j] = summed errors of the steps between the state's last full step and j, for
        every state (s_1..s_H) of the last full steps (``num_steps`` marks an absent entry); inf where undefined.

        States are taken in groups with the same offsets between their full steps, one array operation each."""
        n, history = self.num_steps, self.history
        cumulative = np.full((n + 1,) * history + (n + 1,), np.inf)
        invariant = self.shift_invariant()
        for length in range(1, history + 1):
            for earlier in itertools.combinations(range(-(n - 1), 0), length - 1):
                offsets = np.array([*earlier, 0])
                lasts = np.arange(-offsets[0], n)
                ahead = np.arange(1, n + offsets[0])  # how far past the last full step a target lies
                cached, targets = lasts[:, None] + offsets, lasts[:, None] + ahead
                valid = targets < n
                targets = np.minimum(targets, n - 1)
                if invariant:
                    weights = np.broadcast_to(self.weights(offsets - offsets[0], ahead - offsets[0]), (len(lasts), len(ahead), len(self.family), length))
                else:
                    weights = np.stack([self.weights(c, t) for c, t in zip(cached, targets)])
                sums = self.run_errors(cached, targets, valid, weights)
                for last, row, state in zip(lasts, sums, cached):
                    index = (n,) * (history - length) + tuple(state)
                    cumulative[index] = 0.0
                    cumulative[index][last + 1 :] = row[: n - last]
        return cumulative

    def run_errors(self, cached: np.ndarray, targets: np.ndarray, valid: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Summed errors [B, T + 1] of the first 0..T predicted steps after each history ``cached`` [B, H] (targets and
        weights as for :meth:`errors`; ``valid`` marks targets inside the run)."""
        errors = np.where(valid, self.errors(cached, targets, weights), 0.0)
        return np.concatenate([np.zeros((len(cached), 1)), np.cumsum(errors, axis=1)], axis=1)

    def cost(self, steps: list[int]) -> float:
        """The modelled error of the predicted steps when exactly ``steps`` run in full: each run of predicted steps
        scored from the full steps before it."""
        total, cached, run = 0.0, (), []
        for step in [*range(self.num_steps), None]:
            if run and (step is None or step in steps):
                index, targets = np.array([cached], dtype=int).reshape(1, len(cached)), np.array([run])
                weights = self.weights(cached, run)[None]
                total += float(self.run_errors(index, targets, np.ones_like(targets, dtype=bool), weights)[0, -1])
                run = []
            if step is not None and step in steps:
                cached = (*cached, step)[-self.history :]
            elif step is not None:
                run.append(step)
        return total


@attrs.frozen
class CoherentCosts(StepCosts):
    """The cost of a run of predicted steps as the squared norm of their summed error vectors, each times its step
    size (``step_sizes``, e.g. the Euler step |sigma_s - sigma_s+1|; None: 1): the latent error the run leaves.

    A family of several candidates: each step's error vector is that of the candidate with the least
    teacher-forced (squared) error at that step, as for :class:`StepCosts`, and those vectors are summed.
    Exact from the Gram matrix: with a_u the step sizes of the run's steps u <= t and w_u the chosen candidate's
    weights over the cached steps c_h, the sum S_t = sum_u a_u (r_u - sum_h w_uh r_ch) has
    |S_t|^2 = sum_uv a_u a_v G_uv - 2 sum_h k_th sum_u a_u G_ch,u + sum_hk k_th G_ch,ck k_tk, k_th = sum_u a_u w_uh.
    """

    step_sizes: np.ndarray | None = attrs.field(default=None, eq=False)  # [N]

    def run_errors(self, cached: np.ndarray, targets: np.ndarray, valid: np.ndarray, weights: np.ndarray) -> np.ndarray:
        errors = self.candidate_errors(cached, targets, weights)  # [B, T, C]
        errors = np.where(np.isnan(errors), np.inf, errors)
        best = errors.argmin(axis=2)
        blocked = np.cumsum(valid & ~np.isfinite(errors.min(axis=2)), axis=1) > 0  # a step no candidate forecasts
        chosen = np.nan_to_num(np.take_along_axis(weights, best[:, :, None, None], axis=2)[:, :, 0])  # [B, T, H]
        sizes = np.ones(self.num_steps) if self.step_sizes is None else np.asarray(self.step_sizes, dtype=np.float64)
        a = np.where(valid, sizes[targets], 0.0)  # [B, T]
        own = self.gram[targets[:, :, None], targets[:, None, :]] * a[:, :, None] * a[:, None, :]  # [B, T, T]
        targets_part = np.diagonal(own.cumsum(axis=1).cumsum(axis=2), axis1=1, axis2=2)
        k = np.cumsum(a[..., None] * chosen, axis=1)  # [B, T, H]
        rows = self.gram[cached]  # [B, H, N]
        cross = np.cumsum(np.take_along_axis(rows, targets[:, None, :], axis=2) * a[:, None, :], axis=2)  # [B, H, T]
        history = np.take_along_axis(rows, cached[:, None, :], axis=2)  # [B, H, H]
        summed = targets_part - 2 * np.einsum("bth,bht->bt", k, cross) + np.einsum("bth,bhk,btk->bt", k, history, k)
        summed = np.where(blocked, np.inf, np.maximum(summed, 0.0))
        return np.concatenate([np.zeros((len(cached), 1)), summed], axis=1)


def x0_gain(sigmas: np.ndarray, scale: float = DATA_SCALE) -> np.ndarray:
    """[N] the factor by which a latent error left at sigma_s+1 reaches the end of the trajectory: the probability-flow
    map of Gaussian data of standard deviation ``scale`` (flow-matching sigmas, x = (1 - sigma) x0 + sigma noise)
    scales it by std(0) / std(sigma) = scale / sqrt((1 - sigma)^2 scale^2 + sigma^2): 1 at sigma 0, ``scale`` at 1."""
    after = sigmas[1:]
    return scale / np.sqrt((1 - after) ** 2 * scale**2 + after**2)


def make_costs(name: str, gram: np.ndarray, family: tuple[Candidate, ...], sigmas: np.ndarray | None) -> tuple[StepCosts, str]:
    """The cost model ``name`` (one of :data:`COST_MODELS`) over a recorded Gram matrix, with the sampler's ``sigmas``
    [N + 1] (or None), and the name of the one used: without sigmas the step-weighted models fall back (with a
    warning) to ``squared`` (unweighted ``coherent`` placed worse than it on validation samples), and
    ``coherent-gain`` to ``coherent-euler`` where the sigmas are not flow matching's."""
    check_cost_model(name)
    if name == "squared":
        return StepCosts(gram, family), name
    if name in ("coherent-euler", "coherent-gain") and sigmas is None:
        warnings.warn(f"tap.plan: no sampler sigmas (run used no pipeline whose scheduler has them, and no sigmas were "
                      f"given), so cost_model={name!r} falls back to 'squared'; pass sigmas=scheduler.sigmas for a "
                      "hand-written loop", stacklevel=3)
        return StepCosts(gram, family), "squared"
    if name == "coherent-gain" and not (np.all(sigmas >= 0) and np.all(sigmas <= 1)):
        warnings.warn("tap.plan: cost_model='coherent-gain' assumes flow-matching sigmas in [0, 1]; these are not, so the "
                      "steps are weighted by their sizes only ('coherent-euler')", stacklevel=3)
        name = "coherent-euler"
    if name == "coherent":
        return CoherentCosts(gram, family), name
    sizes = np.abs(np.diff(sigmas))
    return CoherentCosts(gram, family, step_sizes=sizes * x0_gain(sigmas) if name == "coherent-gain" else sizes), name


def check_cost_model(name: Any) -> None:
    """A ConfigError unless ``name`` is one of :data:`COST_MODELS`."""
    if name not in COST_MODELS:
        raise ConfigError(f"cost_model must be one of {', '.join(map(repr, COST_MODELS))}, got {name!r}")


def best_placement(costs: StepCosts, full_steps: int, warmup: int = 1) -> tuple[list[int], float]:
    """The ``full_steps`` full steps (the first ``warmup`` included) with the least summed error, and that error."""
    n, history = costs.num_steps, costs.history
    cumulative = costs.table()
    # A transition from a state to the next full step c costs the errors of the steps in between.
    moves = cumulative[..., :n].copy()
    last = np.arange(n + 1).reshape((1,) * (history - 1) + (n + 1, 1))
    moves[np.broadcast_to(np.arange(n) <= last, moves.shape)] = np.inf
    value = cumulative[..., n]  # no full step left: the tail's errors
    choices = []
    for _ in range(full_steps - warmup):
        total = moves + value[None, ..., :n]
        choices.append(total.argmin(-1))
        value = total.min(-1)
    start = tuple(range(warmup))
    state = (n,) * max(history - warmup, 0) + start[-history:]
    best, steps = float(value[state]), list(start)
    for choice in reversed(choices):
        step = int(choice[state])
        steps.append(step)
        state = (*state[1:], step)
    return steps, best


# -- the uniform grid and the self-check -----------------------------------------------------------
def uniform_grid(num_steps: int, full_steps: int, warmup: int = 1) -> list[int]:
    """tap's fixed grid with ``full_steps`` full steps (its largest such interval), else that many evenly spread."""
    fixed = registry().get("schedule", "fixed").cls
    for interval in range(num_steps, 0, -1):
        steps = fixed(interval=interval, warmup=warmup).planned_full_steps(num_steps)
        if len(steps) == full_steps:
            return steps
    spacing = (num_steps - warmup) / (full_steps - warmup + 1)  # >= 1: K = N is interval 1's grid
    return [*range(warmup), *(warmup - 1 + round(j * spacing) for j in range(1, full_steps - warmup + 1))]


def as_arrays(value: Any) -> list[np.ndarray]:
    """Every array in run's outputs (tensors, arrays, images, pipeline outputs, and lists or dicts of them) as float64."""
    if value is None:
        return []
    if isinstance(value, torch.Tensor):
        return [value.detach().to("cpu", torch.float64).numpy()]
    if isinstance(value, dict):
        return [a for item in value.values() for a in as_arrays(item)]
    if isinstance(value, (list, tuple)):
        return [a for item in value for a in as_arrays(item)]
    for name in ("images", "frames"):
        if hasattr(value, name):
            return as_arrays(getattr(value, name))
    return [np.asarray(value, dtype=np.float64)]


def closeness(references: list[np.ndarray], outputs: Any) -> float:
    """Mean PSNR (dB, capped at PSNR_CAP) of ``outputs`` against ``references``, each over its reference's value range."""
    arrays = as_arrays(outputs)
    if len(arrays) != len(references):
        raise ConfigError(f"run returned {len(arrays)} outputs with tap but {len(references)} without: it must return the same outputs each time")
    scores = [capped_psnr(reference, output, data_range=float(np.ptp(reference)) or 1.0) for reference, output in zip(references, arrays)]
    return float(np.mean(scores))


@attrs.frozen
class Plan:
    """A placement and how it was chosen: the DP's steps and the grid's, their modelled errors and calibration PSNR."""

    config: TAPConfig
    planned: list[int]
    grid: list[int]
    planned_error: float
    grid_error: float
    planned_psnr: float | None  # None when the self-check was skipped
    grid_psnr: float | None
    calibration_seconds: float
    planning_seconds: float
    check_seconds: float  # the self-check and the refinement together
    generations: int  # calibration generations recorded (per cache context)
    cost_model: str = DEFAULT_COST_MODEL  # the cost model the DP used (its fallback where the asked one lacked sigmas)
    refined: list[int] | None = None  # where the refinement ended (None when it did not run)
    refined_psnr: float | None = None
    evaluations: int = 0  # runs of ``run`` with tap by the self-check and the refinement

    @property
    def steps(self) -> list[int]:
        return list(self.config.schedule_options["steps"])

    @property
    def kept(self) -> str:
        """Which placement the plan keeps: "planned" (the DP's), "grid" or "refined"."""
        return "planned" if self.steps == self.planned else "grid" if self.steps == self.grid else "refined"


def check_arguments(full_steps: int, num_steps: int, config: TAPConfig) -> None:
    """Refuse bad counts and families the cost model cannot score, before anything runs."""
    for name, value in (("num_steps", num_steps), ("full_steps", full_steps)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name} must be an int >= 1, got {value!r}")
    if full_steps > num_steps:
        raise ConfigError(f"full_steps={full_steps} is more than num_steps={num_steps}")
    if full_steps < config.warmup:
        raise ConfigError(f"full_steps={full_steps} is fewer than the config's warmup={config.warmup} (always full)")
    family = config.family()
    if not all(isinstance(c.predictor, LinearPredictor) for c in family):
        raise ConfigError("tap.plan scores linear predictors only (weighted sums of cached steps); this family has another")
    history = max(c.predictor.history for c in family)
    if history > MAX_HISTORY:
        raise ConfigError(f"tap.plan handles predictors that use up to {MAX_HISTORY} full steps (taylor order <= 2); this family uses {history}")


def make_plan(target: Any, run: Callable[[], Any], *, full_steps: int, num_steps: int, config: TAPConfig | None = None,
              check: bool = True, tokens: int | None = TOKENS, cost_model: str = DEFAULT_COST_MODEL,
              sigmas: Sequence[float] | torch.Tensor | None = None, check_margin: float = DEFAULT_CHECK_MARGIN,
              refine: int = 0) -> Plan:
    """Record ``run`` (full-compute generations of ``num_steps`` steps), place ``full_steps`` full steps by the DP,
    and, with ``check``, keep the DP's placement unless tap's grid comes as close to run's full-compute outputs
    (within ``check_margin``).

    ``cost_model`` is what the DP minimises, one of :data:`COST_MODELS` (default :data:`DEFAULT_COST_MODEL`).
    ``coherent-euler`` and ``coherent-gain`` weigh each step's error by the sampler's step size
    |sigma_s - sigma_s+1| (``coherent-gain`` also by :func:`x0_gain`): the sigmas come from ``sigmas``
    (``num_steps + 1`` values, the final one included: a hand-written loop's ``scheduler.sigmas``) or else from
    the pipeline's scheduler, read while ``run`` generates; with neither they warn and fall back to ``squared``.
    :attr:`Plan.cost_model` says which model was used.

    ``check_margin`` (dB, default :data:`DEFAULT_CHECK_MARGIN`): the self-check keeps the DP's placement only if it
    is closer to full compute than the grid by at least this on run's samples (0: whichever is closer; a few
    calibration samples are a noisy judge).

    ``refine`` > 0: up to that many passes of moving each full step after the warm-up by one step
    (:data:`REFINE_MOVES`) while run's samples come closer to full compute, from the placement the check kept;
    the result is kept if it beats that start by ``check_margin``. Each move tried is one more run with tap."""
    config = TAPConfig() if config is None else config
    if not isinstance(config, TAPConfig):
        raise ConfigError(f"config must be a tap.TAPConfig, got {type(config).__name__}")
    check_arguments(full_steps, num_steps, config)
    check_cost_model(cost_model)
    if not isinstance(check_margin, (int, float)) or isinstance(check_margin, bool) or not check_margin >= 0:
        raise ConfigError(f"check_margin must be a number of dB >= 0, got {check_margin!r}")
    if not isinstance(refine, int) or isinstance(refine, bool) or refine < 0:
        raise ConfigError(f"refine must be an int >= 0 (passes of the refinement; 0 skips it), got {refine!r}")
    given = None if sigmas is None else explicit_sigmas(sigmas, num_steps)
    start = time.perf_counter()
    recorder, outputs = record(target, run, num_steps, config, tokens)
    calibrated = time.perf_counter()
    costs, used = make_costs(cost_model, recorder.gram, config.family(), given if given is not None else recorder.mean_sigmas())
    planned, planned_error = best_placement(costs, full_steps, config.warmup)
    grid = uniform_grid(num_steps, full_steps, config.warmup)
    grid_error = costs.cost(grid)
    planning = time.perf_counter()

    def listed(steps):
        return config.replace(schedule="listed", schedule_options={"steps": steps, "num_steps": num_steps})

    scores: dict[tuple[int, ...], float] = {}
    measured = (check and planned != grid) or refine > 0  # placements to generate on run's samples
    references = as_arrays(outputs) if measured else []
    if measured and not references:
        raise ConfigError("run returned no outputs to check the plan against: return the generations (or pass check=False, refine=0)")

    def calibration_psnr(steps: list[int]) -> float:
        if tuple(steps) not in scores:
            with tap.accelerate(target, listed(steps)), torch.no_grad():
                scores[tuple(steps)] = closeness(references, run())
        return scores[tuple(steps)]

    keep = planned
    if check and planned != grid:
        planned_psnr = calibration_psnr(planned)
        keep = grid if calibration_psnr(grid) > planned_psnr - check_margin else planned
    refined, refined_psnr = None, None
    if refine:
        refined, refined_psnr = refine_placement(keep, calibration_psnr, num_steps=num_steps, warmup=config.warmup, sweeps=refine,
                                                 moves=REFINE_MOVES)
        if refined_psnr >= calibration_psnr(keep) + check_margin:
            keep = refined
    return Plan(listed(keep), planned, grid, planned_error, grid_error, scores.get(tuple(planned)), scores.get(tuple(grid)),
                calibrated - start, planning - calibrated, time.perf_counter() - planning, recorder.generations, used,
                refined, refined_psnr, len(scores))


def plan(target: Any, run: Callable[[], Any], *, full_steps: int, num_steps: int, config: TAPConfig | None = None, **options) -> TAPConfig:
    """The base ``config`` with a ``listed`` schedule of ``full_steps`` full steps placed for this model and
    ``num_steps`` from the generations ``run`` makes (see :func:`make_plan` for ``options``)."""
    return make_plan(target, run, full_steps=full_steps, num_steps=num_steps, config=config, **options).config
