"""`tap plan`'s cost model: the shipped squared errors against coherent, step-weighted variants, on held-out samples.

    python contrib/benchmarks/plan_cost_model.py demo --shifts 1 3 --steps 50 --full-steps 7 9 13
    python contrib/benchmarks/plan_cost_model.py demo --shifts 1 3 --steps 28 --full-steps 5 7 10
    python contrib/benchmarks/plan_cost_model.py qwen --steps 50 --full-steps 7 9 13
    python contrib/benchmarks/plan_cost_model.py qwen --steps 28 --full-steps 5 7 10

One recording per model, scheduler shift and step count (``tap.planning.record`` on the calibration samples:
the demo model's prompts g, A, 7 with seed 1; the trained Qwen-Image glyph model's glyphs g, A, 7, guidance in
the hand-written loop of second_model.py at shift 3), then every cost model places the full steps by the DP on
that one Gram matrix. Each placement is scored three ways: on the calibration samples with make_plan's own
``closeness`` (what the self-check compares), on validation samples (demo: C, E, 4, n with seed 2; Qwen: glyphs
C, E, 4, n), used to choose a cost model, and on the test samples (demo: B, R, x, 3, Q, k, 5, M with seed 0;
Qwen: B, e, 3, Q, R, x, k, M), reported. "kept" is what make_plan returns with that cost model: the DP's
placement or tap's uniform grid, whichever is closer to full compute on the calibration samples.

Cost models (d_s = |sigma_s - sigma_s+1|, the Euler step; e_s the teacher-forced error vector of step s;
a run = the predicted steps between two full steps):
  * squared: sum of |e_s|^2 (shipped);
  * coherent: per run, |sum e_s|^2; coherent-euler: |sum d_s e_s|^2; coherent-gain: coherent-euler x gain with
    c = 4 (below) (these three are tap.planning's own code, as make_plan runs them);
    d^0.5 and d^2: |sum d_s^p e_s|^2;
  * path: per run, sum over its steps t of |sum_{s<=t} d_s e_s|^2 (the latent error at every step of the run);
  * norm: per run, |sum d_s e_s| (the runs' errors add in norm, a bound on a coherent sum over runs);
  * mix: per run, (sum d_s^2 |e_s|^2 + |sum d_s e_s|^2) / 2;
  * coherent-euler, warm-up 2 / 3: the first 2 or 3 steps full (dense early steps, as caches such as
    cache-dit's warm-up do), the others placed by the DP;
  * coherent-euler x gain, c = 1, 2, 4, 8 (and d_s^0.5 x gain, c = 2, 4): each d_s times the gain c / sqrt((1 - sigma_s+1)^2 c^2 + sigma_s+1^2)
    with which a latent error at sigma_s+1 reaches the x0 estimate under Gaussian data of standard deviation c
    (c > 1 weighs early steps up: dense early steps); also d_s x gain^1.5 (c = 4), path x gain (c = 4), and
    d_s x sigma_s or x sigma_s^0.5 (early steps weigh more, late ones vanish).
Appends Markdown to ``--out`` (one table per model, shift and step count, as each finishes) and, with ``--json``,
keeps the raw numbers.
"""

from __future__ import annotations

import argparse
import functools
import json
import shlex
import sys
import time
from pathlib import Path

import attrs
import numpy as np
import torch

import tap
from tap.config import TAPConfig
from tap.planning import (TOKENS, CoherentCosts, StepCosts, as_arrays, best_placement, closeness, explicit_sigmas, make_costs, record,
                          uniform_grid, x0_gain)

from plan_samples import VALIDATION, Case, plan_cases



@attrs.frozen
class PathCosts(CoherentCosts):
    """Per run, the latent error summed over the run's steps: sum_t |S_t|^2."""

    def run_errors(self, cached, targets, valid, weights):
        return np.cumsum(super().run_errors(cached, targets, valid, weights), axis=1)


@attrs.frozen
class NormCosts(CoherentCosts):
    """Per run, |S| (not squared)."""

    def run_errors(self, cached, targets, valid, weights):
        return np.sqrt(super().run_errors(cached, targets, valid, weights))


@attrs.frozen
class MixedCosts(CoherentCosts):
    """Per run, the mean of the d_s^2-weighted squared errors and the coherent d_s-weighted error."""

    def run_errors(self, cached, targets, valid, weights):
        squared = StepCosts(self.gram, self.family, self.step_sizes**2).run_errors(cached, targets, valid, weights)
        return (squared + super().run_errors(cached, targets, valid, weights)) / 2


def gain(sigmas: np.ndarray, c: float) -> np.ndarray:
    """How a latent error at sigma_s+1 reaches sigma = 0 under Gaussian data of standard deviation c:
    c / sqrt((1 - sigma)^2 c^2 + sigma^2); 1 at sigma = 0, c at sigma = 1 (tap.planning.x0_gain)."""
    return x0_gain(sigmas, c)


def placements(gram: np.ndarray, family, count: int, names: list[str] | None, sigmas: np.ndarray) -> dict[str, list[int]]:
    """Every cost model's DP placement of ``count`` full steps (warm-up 1 unless named otherwise)."""
    sizes = np.abs(np.diff(sigmas))
    models = {
        "squared (shipped)": lambda: (make_costs("squared", gram, family, sigmas)[0], 1),
        "coherent": lambda: (make_costs("coherent", gram, family, sigmas)[0], 1),
        "coherent-euler": lambda: (make_costs("coherent-euler", gram, family, sigmas)[0], 1),
        "coherent-gain (tap.planning, c = 4)": lambda: (make_costs("coherent-gain", gram, family, sigmas)[0], 1),
        "coherent, d^0.5": lambda: (CoherentCosts(gram, family, step_sizes=sizes**0.5), 1),
        "coherent, d^2": lambda: (CoherentCosts(gram, family, step_sizes=sizes**2), 1),
        "path": lambda: (PathCosts(gram, family, step_sizes=sizes), 1),
        "norm": lambda: (NormCosts(gram, family, step_sizes=sizes), 1),
        "mix": lambda: (MixedCosts(gram, family, step_sizes=sizes), 1),
        "coherent-euler, warm-up 2": lambda: (make_costs("coherent-euler", gram, family, sigmas)[0], 2),
        "coherent-euler, warm-up 3": lambda: (make_costs("coherent-euler", gram, family, sigmas)[0], 3),
        "coherent-euler x gain, c = 1": lambda: (CoherentCosts(gram, family, step_sizes=sizes * gain(sigmas, 1.0)), 1),
        "coherent-euler x gain, c = 2": lambda: (CoherentCosts(gram, family, step_sizes=sizes * gain(sigmas, 2.0)), 1),
        "coherent-euler x gain, c = 4": lambda: (CoherentCosts(gram, family, step_sizes=sizes * gain(sigmas, 4.0)), 1),
        "coherent, d^0.5 x gain, c = 2": lambda: (CoherentCosts(gram, family, step_sizes=sizes**0.5 * gain(sigmas, 2.0)), 1),
        "coherent-euler x gain, c = 8": lambda: (CoherentCosts(gram, family, step_sizes=sizes * gain(sigmas, 8.0)), 1),
        "coherent, d^0.5 x gain, c = 4": lambda: (CoherentCosts(gram, family, step_sizes=sizes**0.5 * gain(sigmas, 4.0)), 1),
        "coherent-euler x gain^1.5, c = 4": lambda: (CoherentCosts(gram, family, step_sizes=sizes * gain(sigmas, 4.0) ** 1.5), 1),
        "path x gain, c = 4": lambda: (PathCosts(gram, family, step_sizes=sizes * gain(sigmas, 4.0)), 1),
        "coherent-euler x sigma_s": lambda: (CoherentCosts(gram, family, step_sizes=sizes * sigmas[:-1]), 1),
        "coherent-euler x sigma_s^0.5": lambda: (CoherentCosts(gram, family, step_sizes=sizes * sigmas[:-1] ** 0.5), 1),
    }
    found = {}
    for name, build in models.items():
        if names is None or name in names:
            costs, warmup = build()
            found[name] = best_placement(costs, count, warmup)[0]
    return found


class Scorer:
    """One model at one schedule: full-compute references of each sample set, and each placement scored once."""

    def __init__(self, case: Case, steps: int, calibration_outputs) -> None:
        self.target, self.generate, self.sets, self.steps, self.metric = case.target, case.generate, case.sets, steps, case.metric
        self.calibration_references = as_arrays(calibration_outputs)
        start = time.perf_counter()
        self.references = {name: [as_arrays(self.generate(s))[0] for s in samples] for name, samples in self.sets.items() if name != "calibration"}
        self.seconds_per_generation = (time.perf_counter() - start) / sum(len(v) for v in self.references.values())
        self.score = functools.lru_cache(None)(self._score)

    def _score(self, placement: tuple[int, ...]) -> dict[str, float]:
        config = TAPConfig(schedule="listed", schedule_options={"steps": list(placement), "num_steps": self.steps})
        scores = {}
        with tap.accelerate(self.target, config):
            scores["calibration"] = closeness(self.calibration_references, [self.generate(s) for s in self.sets["calibration"]])
            for name, references in self.references.items():
                scores[name] = float(np.mean([self.metric(r, as_arrays(self.generate(s))[0]) for r, s in zip(references, self.sets[name])]))
        return scores


def study(scorer: Scorer, gram, family, full_steps: list[int], names, sigmas) -> dict:
    """Per budget and cost model: the DP's placement, its scores, and what make_plan's self-check keeps."""
    results = {}
    for count in full_steps:
        grid = uniform_grid(scorer.steps, count)
        grid_scores = scorer.score(tuple(grid))
        rows = {"uniform grid": dict(placement=grid, dp=grid_scores, kept="grid", kept_scores=grid_scores)}
        for name, placement in placements(gram, family, count, names, sigmas).items():
            scores = scorer.score(tuple(placement))
            keep_grid = placement != grid and grid_scores["calibration"] > scores["calibration"]
            rows[name] = dict(placement=placement, dp=scores, kept="grid" if keep_grid else "planned", kept_scores=grid_scores if keep_grid else scores)
            print(f"  {count} full: {name}: {placement} {scores} kept {rows[name]['kept']}", flush=True)
        results[count] = rows
    return results


def table(title: str, command: str, results: dict, seconds: float, note: str) -> str:
    counts = list(results)
    shipped = {c: results[c]["squared (shipped)"]["kept_scores"]["test"] for c in counts}
    lines = [f"## {title}", "", f"Command: `{command}`", "", note,
             f"One full-compute generation: {seconds:.2f} s (CPU, 1 thread, shared cores).", "",
             "Test PSNR (dB) of the DP's own placement, then of the one the self-check keeps (and the gain of that over "
             "today's plan, the shipped model's kept one); validation PSNR of the DP's placement; calibration closeness "
             "(dB) of the DP's placement (the grid's in the grid row).", "",
             "| cost model | " + " | ".join(f"{c} full: test DP / kept (vs today) | val | cal" for c in counts) + " |",
             "|---|" + "---:|---:|---:|" * len(counts)]
    for name in results[counts[0]]:
        cells = []
        for c in counts:
            row = results[c][name]
            kept = row["kept_scores"]["test"]
            cells += [f"{row['dp']['test']:.2f} / {kept:.2f}{' (grid)' if row['kept'] == 'grid' and name != 'uniform grid' else ''} ({kept - shipped[c]:+.2f})",
                      f"{row['dp']['validation']:.2f}", f"{row['dp']['calibration']:.2f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Placements:", ""]
    for c in counts:
        for name, row in results[c].items():
            lines.append(f"- {c} full, {name}: {row['placement']}")
    return "\n".join(lines) + "\n\n"


def cost_model_tables(args, names):
    """Per case (model and shift): one recording of the calibration samples, every cost model's placements scored."""
    for case in plan_cases(args.model, args.steps, args.shifts, tuple(args.validation or VALIDATION), args.validation_seed):
        recorder, outputs = record(case.target, lambda: [case.generate(s) for s in case.sets["calibration"]], args.steps, TAPConfig(), TOKENS)
        # the hand-written loop's sigmas, given as tap.plan(sigmas=...); else read from the pipeline's scheduler, as make_plan does
        sigmas = explicit_sigmas(case.sigmas, args.steps) if case.sigmas is not None else recorder.mean_sigmas()
        scorer = Scorer(case, args.steps, outputs)
        results = study(scorer, recorder.gram, TAPConfig().family(), args.full_steps, names, sigmas)
        yield case.title, results, scorer.seconds_per_generation, case.note


def dB(value: float | None) -> str:
    """A PSNR for a table; "-" where the self-check did not run (the DP placed the grid)."""
    return "-" if value is None else f"{value:.2f}"


def library(args) -> None:
    """make_plan itself (``--cost-model``, ``--check-margin``) on the demo model at each shift, or on the Qwen-Image
    model with the loop's sigmas given: what it places and keeps, its timings, and the kept placement's test PSNR."""
    from tap.planning import make_plan

    lines = []
    for case in plan_cases(args.model.removeprefix("library-"), args.steps, args.shifts):
        references = [as_arrays(case.generate(s))[0] for s in case.sets["test"]]
        for count in args.full_steps:
            plan = make_plan(case.target, lambda: [case.generate(s) for s in case.sets["calibration"]], full_steps=count, num_steps=args.steps,
                             cost_model=args.cost_model, check_margin=args.check_margin, sigmas=case.sigmas)
            with tap.accelerate(case.target, plan.config):
                test = float(np.mean([case.metric(r, as_arrays(case.generate(s))[0]) for r, s in zip(references, case.sets["test"])]))
            lines.append(f"| {case.label} | {count} | {plan.cost_model} | {plan.planned} | {dB(plan.planned_psnr)} | {dB(plan.grid_psnr)} | "
                         f"{plan.kept} | {test:.2f} | {plan.calibration_seconds:.1f} / {plan.planning_seconds:.2f} / {plan.check_seconds:.1f} |")
            print(lines[-1], flush=True)
    command = shlex.join(["python", "contrib/benchmarks/plan_cost_model.py", *sys.argv[1:]])
    header = [f"## make_plan itself: {args.model}, {args.steps} steps", "",
              f"Command: `{command}` (cost model {args.cost_model}, check margin {args.check_margin:g} dB)", "",
              "| model | full | cost model used | DP placement | calibration PSNR planned | grid | kept | test PSNR of kept | calibration / planning / check s |",
              "|---|---:|---|---|---:|---:|---|---:|---|"]
    with Path(args.out).open("a") as file:
        file.write("\n".join(header + lines) + "\n\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=["demo", "qwen", "library-demo", "library-qwen"])
    parser.add_argument("--cost-model", default="coherent-gain", help="library-*: make_plan's cost_model")
    parser.add_argument("--check-margin", type=float, default=0.5, help="library-*: make_plan's check_margin (dB)")
    parser.add_argument("--shifts", nargs="+", type=float, default=[1.0, 3.0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--full-steps", nargs="+", type=int, default=[7, 9, 13])
    parser.add_argument("--models", nargs="+", default=None, help="cost models to run (default: all)")
    parser.add_argument("--validation", nargs="+", default=None, help="demo: validation prompts (default C E 4 n)")
    parser.add_argument("--validation-seed", type=int, default=2, help="demo: the validation prompts' seed")
    parser.add_argument("--out", default="docs/research-data/plan-cost-model.md")
    parser.add_argument("--json", default=None, help="also write the raw results to this file (updated as each table finishes)")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    torch.set_num_threads(1)
    if args.model.startswith("library"):
        return library(args)
    command = shlex.join(["python", "contrib/benchmarks/plan_cost_model.py", *sys.argv[1:]])
    out, raw = Path(args.out), Path(args.json) if args.json else None
    stored = json.loads(raw.read_text()) if raw is not None and raw.exists() else {}
    start = time.perf_counter()
    for title, results, seconds, note in cost_model_tables(args, args.models):
        with out.open("a") as file:
            file.write(table(title, command, results, seconds, note))
        stored[title] = dict(command=command, seconds_per_generation=seconds, results={str(k): v for k, v in results.items()})
        if raw is not None:
            raw.write_text(json.dumps(stored, indent=1) + "\n")
        print(f"{title}: done after {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
