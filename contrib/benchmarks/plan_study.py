"""`tap.plan` against tap's uniform grid on held-out samples, and what planning costs.

For each scheduler shift and full-step budget: plan on calibration prompts (seed 1), then generate
the test prompts (seed 0, none of them a calibration prompt) with the uniform grid, the DP's own
placement and the placement the plan kept after its self-check; PSNR/SSIM against full compute.
The tables in docs/research.md come from:

    python contrib/benchmarks/plan_study.py --shifts 1 3 --steps 50 --full-steps 7 9 13
    python contrib/benchmarks/plan_study.py --shifts 1 3 --steps 20 --full-steps 5 7 9
    python contrib/benchmarks/plan_study.py --shifts 1 3 --steps 28 --full-steps 5 7 10
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from plan_samples import CALIBRATION, PLAN_BEFORE_THE_SWITCH, TEST, arguments, set_shift, test_bench, test_quality
from tap.cli.bench import FULL, Bench
from tap.planning import make_plan


def study(bench: Bench, full_steps: list[int], calibration: tuple[str, ...], seed: int) -> list[dict]:
    """One row per budget: the grid, the DP's placement and the kept one on the test samples, plus the plan's timings."""
    steps = bench.settings.steps
    references = bench.measure(FULL)
    rows = []
    for count in tqdm(full_steps, desc="budgets"):
        one_generation = bench.generate(calibration[0], seed)[1]  # timed next to the plan, on the same load
        plan = make_plan(bench.pipe, lambda: [bench.generate(prompt, seed)[0] for prompt in calibration], full_steps=count, num_steps=steps,
                         **PLAN_BEFORE_THE_SWITCH)
        row = dict(full_steps=count, grid=plan.grid, planned=plan.planned, kept=plan.kept, planned_error=plan.planned_error,
                   grid_error=plan.grid_error, calibration_psnr_planned=plan.planned_psnr, calibration_psnr_grid=plan.grid_psnr,
                   calibration_seconds=plan.calibration_seconds, planning_seconds=plan.planning_seconds,
                   check_seconds=plan.check_seconds, one_generation_seconds=one_generation)
        for name, placement in (("grid", plan.grid), ("planned", plan.planned)):
            row[f"{name}_psnr"], row[f"{name}_ssim"] = test_quality(bench, references, placement, name)
        row["kept_psnr"] = row[f"{plan.kept}_psnr"]
        rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| full steps | uniform grid (dB) | DP placement (dB) | kept by the check (dB) | gain | kept | DP steps | calibration s | planning s | check s | one generation s |",
             "|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['full_steps']} | {r['grid_psnr']:.2f} | {r['planned_psnr']:.2f} | {r['kept_psnr']:.2f} | {r['kept_psnr'] - r['grid_psnr']:+.2f} | "
                     f"{r['kept']} | {r['planned']} | {r['calibration_seconds']:.2f} | {r['planning_seconds']:.3f} | {r['check_seconds']:.2f} | {r['one_generation_seconds']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    args = arguments(__doc__.splitlines()[0], shifts=[1.0, 3.0], full_steps=[7, 9, 13], out="docs/research-data").parse_args()
    torch.set_grad_enabled(False)
    bench = test_bench(args.steps)
    shipped = bench.pipe.scheduler.config
    results, sections = {}, [f"Command: `python contrib/benchmarks/plan_study.py {' '.join(sys.argv[1:])}`\n",
                             f"Demo model, {args.steps} steps, float32 CPU. Calibration: prompts {', '.join(CALIBRATION)}, seed 1. "
                             f"Test: prompts {', '.join(TEST)}, seed 0. Order-1 Taylor forecast (tap's default family).\n"]
    for shift in args.shifts:
        set_shift(bench, shipped, shift)
        rows = study(bench, args.full_steps, CALIBRATION, seed=1)
        results[f"shift={shift:g}"] = rows
        sections.append(f"## Scheduler shift {shift:g}\n\n{table(rows)}\n")
        print(sections[-1])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"plan-{args.steps}"
    (out / f"{name}.json").write_text(json.dumps({"command": sys.argv[1:], "results": results}, indent=2) + "\n")
    (out / f"{name}.md").write_text("\n".join(sections))


if __name__ == "__main__":
    main()
