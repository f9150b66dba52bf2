"""Does weighting each step's error in tap plan's cost model fix the shifted schedule? (It does not.)

    python contrib/benchmarks/plan_weighting.py --shifts 3 1 --full-steps 7 9 13

The calibration Gram matrix is recorded once per scheduler shift (prompts g, A, 7, seed 1); the DP
is rerun with each weighting of the predicted steps' squared errors (or with noise added to the
full steps), and each resulting placement is scored on the eight test prompts (seed 0) against
full compute, as contrib/benchmarks/plan_study.py does. d_s = sigma_s - sigma_{s+1}; the gain with
which a latent error at sigma reaches sigma = 0 under Gaussian data of standard deviation c is
c / sqrt((1 - sigma)^2 c^2 + sigma^2). Writes a Markdown table (``--out``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from plan_samples import CALIBRATION, arguments, set_shift, test_bench, test_quality
from tap.cli.bench import FULL
from tap.config import TAPConfig
from tap.planning import TOKENS, StepCosts, best_placement, record, uniform_grid


def weightings(gram: np.ndarray, sigmas: np.ndarray, steps: int) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Name -> (Gram matrix, step weights) for each cost model tried."""
    d = np.abs(np.diff(sigmas))[:steps]
    after = sigmas[1 : steps + 1]
    power = np.diag(gram)
    gain2 = {c: c**2 / ((1 - after) ** 2 * c**2 + after**2) for c in (0.05, 0.1, 0.3, 2.0)}
    noisy = {f"noisy full steps, eps^2 = {e}": (gram + e * np.diag(power), None) for e in (0.01, 0.03, 0.1)}
    return {
        "none (the shipped cost model)": (gram, None),
        "d_s^2": (gram, d**2),
        "abs(d_s)": (gram, d),
        **{f"d_s^2 x gain^2, c = {c}": (gram, d**2 * g) for c, g in gain2.items()},
        "1 / norm(r_s)^2": (gram, 1 / power),
        "d_s^2 / norm(r_s)^2": (gram, d**2 / power),
        **noisy,
    }


def main() -> None:
    args = arguments(__doc__.splitlines()[0], shifts=[3.0, 1.0], full_steps=[7, 9, 13], out="docs/research-data/plan-weighting.md").parse_args()
    torch.set_grad_enabled(False)
    bench = test_bench(args.steps)
    shipped, config = bench.pipe.scheduler.config, TAPConfig()
    columns = [(shift, count) for shift in args.shifts for count in args.full_steps]
    results: dict[str, dict] = {}
    for shift in args.shifts:
        set_shift(bench, shipped, shift)
        recorder, _ = record(bench.pipe, lambda: [bench.generate(p, 1)[0] for p in CALIBRATION], args.steps, config, TOKENS)
        sigmas = bench.pipe.scheduler.sigmas.double().numpy()
        references, scored = bench.measure(FULL), {}

        def score(placement):
            if tuple(placement) not in scored:
                scored[tuple(placement)] = test_quality(bench, references, placement)[0]
            return scored[tuple(placement)]

        for count in args.full_steps:
            results.setdefault("uniform grid", {})[shift, count] = score(uniform_grid(args.steps, count))
            for name, (gram, weights) in weightings(recorder.gram, sigmas, args.steps).items():
                placement, _ = best_placement(StepCosts(gram, config.family(), weights), count)
                results.setdefault(name, {})[shift, count] = score(placement)
                print(f"shift {shift:g}, {count} full: {name}: {results[name][shift, count]:.2f} dB {placement}", flush=True)
    grid = results["uniform grid"]
    lines = [f"Command: `{' '.join(['python contrib/benchmarks/plan_weighting.py', *sys.argv[1:]])}`", "",
             f"PSNR (dB) of the DP's own placement on the test prompts, {args.steps} steps (gain over the grid in brackets).", "",
             "| weighting | " + " | ".join(f"shift {s:g}: {k} full" for s, k in columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for name, row in results.items():
        cells = [f"{row[c]:.2f}" + ("" if name == "uniform grid" else f" ({row[c] - grid[c]:+.2f})") for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
