"""`tap.plan` on the trained Qwen-Image glyph model (contrib/second-model), through a hand-written loop.

    python contrib/benchmarks/plan_second_model.py --full-steps 7 9 13

The plan is calibrated on glyphs g, A, 7 and tested on eight others, each generated with
classifier-free guidance in the sampling loop of contrib/benchmarks/second_model.py (50 steps,
scheduler shift 3). PSNR of each placement's final latents against full compute, and the plan's
timings next to one generation. Writes a Markdown table (``--out``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

import tap
from second_model import STEPS, glyph_sample_loop, load_trained, psnr
from plan_samples import GLYPH_SETS, PLAN_BEFORE_THE_SWITCH
from tap.planning import make_plan

CALIBRATION, TEST = GLYPH_SETS["calibration"], GLYPH_SETS["test"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full-steps", nargs="+", type=int, default=[7, 9, 13])
    parser.add_argument("--out", default="docs/research-data/plan-second-model.md")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    torch.set_num_threads(1)
    model = load_trained()
    start = time.perf_counter()
    references = {glyph: glyph_sample_loop(model, glyph) for glyph in TEST}
    one_generation = (time.perf_counter() - start) / len(TEST)

    def test_psnr(steps: list[int]) -> float:
        config = tap.TAPConfig(schedule="listed", schedule_options={"steps": steps, "num_steps": STEPS})
        with tap.accelerate(model, config):
            return statistics.mean(psnr(glyph_sample_loop(model, glyph), references[glyph]) for glyph in TEST)

    lines = [
        f"Command: `{' '.join(['python contrib/benchmarks/plan_second_model.py', *sys.argv[1:]])}`", "",
        f"Trained Qwen-Image glyph model, {STEPS} steps, shift 3, guidance in the loop; calibration {' '.join(CALIBRATION)}, "
        f"test {' '.join(TEST)}; mean PSNR (dB) of the final latents against full compute; CPU, 1 thread.", "",
        "| full steps | uniform grid | DP placement | kept by the check | kept - grid | DP steps | calibration s | planning s | check s | one generation s |",
        "|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for count in args.full_steps:
        plan = make_plan(model, lambda: [glyph_sample_loop(model, glyph) for glyph in CALIBRATION], full_steps=count, num_steps=STEPS, **PLAN_BEFORE_THE_SWITCH)
        grid, planned = test_psnr(plan.grid), test_psnr(plan.planned)
        kept = grid if plan.kept == "grid" else planned
        lines.append(f"| {count} | {grid:.2f} | {planned:.2f} | {kept:.2f} | {kept - grid:+.2f} | {plan.planned} | "
                     f"{plan.calibration_seconds:.2f} | {plan.planning_seconds:.3f} | {plan.check_seconds:.2f} | {one_generation:.2f} |")
        print(lines[-1], flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
