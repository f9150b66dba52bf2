"""Other ways to place full steps at the shifted schedule, tried after tap plan's DP lost there (none beats the grid there).

    python contrib/benchmarks/plan_variants.py cost-models --shifts 3 1 --full-steps 9 13
    python contrib/benchmarks/plan_variants.py refinements --shifts 3 --full-steps 9 13
    python contrib/benchmarks/plan_variants.py cost-models --shifts 1 --full-steps 7 --out docs/research-data/plan-cost-models-7.md
    python contrib/benchmarks/plan_variants.py cost-models --shifts 1 --steps 28 --full-steps 5 7 10 --out docs/research-data/plan-cost-models-28.md

``cost-models`` reruns the DP on the calibration Gram matrix (prompts g, A, 7, seed 1) with:
  * coherent errors: within each run of predicted steps the errors add as vectors (weighted by 1 or
    by the Euler step d_s), as a latent error does over consecutive steps, instead of as squares;
  * measured sensitivity: each step's squared error weighted by a_s (or its square root), measured as
    the mean squared image error that predicting step s alone (every other step full) causes on the
    calibration samples, over the teacher-forced error of that one prediction; measured every
    third step from step 2 and interpolated log-linearly.
``refinements`` starts from tap's grid and searches on the calibration samples with:
  * coordinate descent (tap.placement) accepting a move only if it raises the mean PSNR and lowers no
    calibration sample's PSNR (by more than 0 or 0.2 dB), or only if it raises the mean by 0.3 dB;
  * a two-parameter family: the second full step a (the first after step 0) and the last b, the others
    evenly spaced between them; every a from 3 below to 1 above the grid's, every b from 3 below the
    grid's last to the final step; the one with the best mean calibration PSNR.
Each placement is then scored on the eight test prompts (seed 0) against full compute. Writes Markdown
to ``--out``.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np
import torch

import tap
from plan_samples import CALIBRATION, arguments, listed, set_shift, test_bench, test_quality
from tap.cli.bench import FULL, Bench
from tap.config import TAPConfig
from tap.cli.metrics import psnr
from tap.placement import refine_placement
from tap.planning import TOKENS, CoherentCosts, StepCosts, best_placement, record, uniform_grid


class Study:
    """The demo pipeline at one scheduler shift: calibration outputs, test references, placements scored once each."""

    def __init__(self, bench: Bench, shipped, shift: float) -> None:
        self.bench, self.steps = bench, bench.settings.steps
        set_shift(bench, shipped, shift)
        self.recorder, outputs = record(bench.pipe, lambda: [bench.generate(p, 1)[0] for p in CALIBRATION], self.steps, TAPConfig(), TOKENS)
        self.calibration_references = [np.asarray(o, dtype=np.float64) for o in outputs]
        self.sigmas = bench.pipe.scheduler.sigmas.double().numpy()
        self.references = bench.measure(FULL)
        self.test = functools.lru_cache(None)(self._test)
        self.calibration = functools.lru_cache(None)(self._calibration)

    def _test(self, placement: tuple[int, ...]) -> float:
        return test_quality(self.bench, self.references, placement)[0]

    def _calibration(self, placement: tuple[int, ...]) -> np.ndarray:
        """PSNR of each calibration sample (dB) with this placement."""
        with tap.accelerate(self.bench.pipe, listed(placement, self.steps)):
            return np.array([psnr(r, self.bench.generate(p, 1)[0]) for r, p in zip(self.calibration_references, CALIBRATION)])

    def sensitivity(self) -> np.ndarray:
        """a_s per step: image error from predicting step s alone over its teacher-forced error (every third step, interpolated)."""
        costs, probed, ratios = StepCosts(self.recorder.gram, TAPConfig().family()), list(range(2, self.steps, 3)), []
        for step in probed:
            others = tuple(s for s in range(self.steps) if s != step)
            with tap.accelerate(self.bench.pipe, listed(others, self.steps)):
                error = np.mean([np.mean((np.asarray(self.bench.generate(p, 1)[0], dtype=np.float64) - r) ** 2)
                                 for r, p in zip(self.calibration_references, CALIBRATION)])
            ratios.append(error / costs.cost(list(others)))
        return np.exp(np.interp(np.arange(self.steps), probed, np.log(ratios)))

    def cost_models(self, count: int, sensitivity: np.ndarray) -> dict[str, list[int]]:
        gram, family, d = self.recorder.gram, TAPConfig().family(), np.abs(np.diff(self.sigmas))[:self.steps]
        return {
            "none (the shipped cost model)": best_placement(StepCosts(gram, family), count)[0],
            "coherent within runs of predicted steps": best_placement(CoherentCosts(gram, family, step_sizes=np.ones(self.steps)), count)[0],
            "coherent, weighted by d_s": best_placement(CoherentCosts(gram, family, step_sizes=d), count)[0],
            "measured sensitivity a_s": best_placement(StepCosts(gram, family, sensitivity), count)[0],
            "sqrt(a_s)": best_placement(StepCosts(gram, family, np.sqrt(sensitivity)), count)[0],
        }

    def refinements(self, count: int) -> dict[str, list[int]]:
        grid = uniform_grid(self.steps, count)
        rules = {
            "coordinate descent, no sample worse": lambda new, old: new.mean() > old.mean() and bool(np.all(new >= old)),
            "coordinate descent, no sample 0.2 dB worse": lambda new, old: new.mean() > old.mean() and bool(np.all(new >= old - 0.2)),
            "coordinate descent, mean +0.3 dB": lambda new, old: new.mean() > old.mean() + 0.3,
        }
        found = {}
        for name, better in rules.items():
            score = Ordered.by(better)
            found[name] = refine_placement(grid, lambda c: score(self.calibration(tuple(c))), num_steps=self.steps, warmup=1, sweeps=2)[0]
        gap = grid[2] - grid[1]
        family = [[0, *(int(round(x)) for x in np.linspace(a, b, count - 1))] for a in range(max(1, gap - 3), gap + 2) for b in range(grid[-1] - 3, self.steps)]
        family = [p for p in family if len(set(p)) == count]
        found["two-parameter grid (a, b), best mean"] = max(family, key=lambda p: self.calibration(tuple(p)).mean())
        return found


class Ordered:
    """Per-sample scores compared by a given rule, so refine_placement can climb a partial order."""

    def __init__(self, scores: np.ndarray, better) -> None:
        self.scores, self.better = scores, better

    @classmethod
    def by(cls, better):
        return lambda scores: cls(scores, better)

    def __gt__(self, other: "Ordered") -> bool:
        return self.better(self.scores, other.scores)


def main() -> None:
    parser = arguments(__doc__.splitlines()[0], shifts=[3.0], full_steps=[9, 13], out=None)  # --out: default plan-<study>.md
    parser.add_argument("study", choices=["cost-models", "refinements"])
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    bench = test_bench(args.steps)
    shipped, columns, results = bench.pipe.scheduler.config, [], {}
    for shift in args.shifts:
        study = Study(bench, shipped, shift)
        sensitivity = study.sensitivity() if args.study == "cost-models" else None
        for count in args.full_steps:
            columns.append((shift, count))
            grid = uniform_grid(args.steps, count)
            found = study.cost_models(count, sensitivity) if args.study == "cost-models" else study.refinements(count)
            for name, placement in {"uniform grid": grid, **found}.items():
                results.setdefault(name, {})[shift, count] = (study.test(tuple(placement)), study.calibration(tuple(placement)).mean(), placement)
                print(f"shift {shift:g}, {count} full: {name}: {results[name][shift, count]}", flush=True)
    grid = results["uniform grid"]
    lines = [f"Command: `{' '.join(['python contrib/benchmarks/plan_variants.py', *sys.argv[1:]])}`", "",
             f"Demo model, {args.steps} steps. PSNR (dB) on the test prompts, gain over the grid in brackets, then the mean PSNR on the "
             "calibration samples and the placement.", "",
             "| placement | " + " | ".join(f"shift {s:g}: {k} full" for s, k in columns) + " |", "|---|" + "---:|" * len(columns)]
    for name, row in results.items():
        cells = [f"{row[c][0]:.2f} ({row[c][0] - grid[c][0]:+.2f}); calibration {row[c][1]:.2f}; {row[c][2]}" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    out = Path(args.out or f"docs/research-data/plan-{args.study}.md")
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
