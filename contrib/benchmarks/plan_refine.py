"""`tap.plan` end to end: the old default, the new default and the new default with refinement, on held-out samples.

    python contrib/benchmarks/plan_refine.py demo --shifts 1 3 --steps 50 --full-steps 7 9 13
    python contrib/benchmarks/plan_refine.py demo --shifts 1 3 --steps 28 --full-steps 5 7 10
    python contrib/benchmarks/plan_refine.py qwen --steps 50 --full-steps 7 9 13
    python contrib/benchmarks/plan_refine.py qwen --steps 28 --full-steps 5 7 10

For each model, shift, step count and number of full steps, ``make_plan`` runs with each setting on the
calibration samples of plan_cost_model.py (demo: prompts g, A, 7 with seed 1; the trained Qwen-Image glyph
model: glyphs g, A, 7, its hand-written loop's sigmas given) and the placement it keeps is generated on the
validation samples (demo: C, E, 4, n with seed 2; glyphs C, E, 4, n) and the test samples (demo: B, R, x, 3,
Q, k, 5, M with seed 0; glyphs B, e, 3, Q, R, x, k, M). Settings:

  * old default: ``cost_model="squared", check_margin=0`` (tap.plan before the switch);
  * default: ``make_plan``'s defaults (``coherent-gain``, check margin 0.5 dB);
  * default + refine: the same with ``refine=6`` (passes of one-step moves on the calibration samples).

Appends a Markdown table per model and step count to ``--out``; CPU, one thread.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

import tap
from tap.planning import as_arrays, make_plan
from tap.psnr import PSNR_CAP, capped_psnr

from plan_cost_model import DEMO_CALIBRATION, DEMO_TEST, DEMO_VALIDATION, GLYPH_CALIBRATION, GLYPH_TEST, GLYPH_VALIDATION

SETTINGS = {
    "old default": dict(cost_model="squared", check_margin=0.0),
    "default": {},
    "default + refine": dict(refine=6),
}


def demo_cases(args):
    """(title, target, generate, sample sets, metric, extra make_plan options) for each shift of the demo model."""
    from plan_samples import set_shift, test_bench
    from tap.cli.metrics import psnr

    bench = test_bench(args.steps)
    shipped = bench.pipe.scheduler.config
    sets = {"calibration": [(p, 1) for p in DEMO_CALIBRATION], "validation": [(p, 2) for p in DEMO_VALIDATION],
            "test": [(p, 0) for p in DEMO_TEST]}
    for shift in args.shifts:
        set_shift(bench, shipped, shift)
        yield (f"demo, shift {shift:g}", bench.pipe, lambda sample: bench.generate(*sample)[0], sets,
               lambda r, o: min(psnr(r, o), PSNR_CAP), {})


def qwen_cases(args):
    from diffusers import FlowMatchEulerDiscreteScheduler

    from second_model import SHIFT, glyph_sample_loop, load_trained

    model = load_trained()
    scheduler = FlowMatchEulerDiscreteScheduler(shift=SHIFT)
    scheduler.set_timesteps(args.steps)
    sets = {"calibration": list(GLYPH_CALIBRATION), "validation": list(GLYPH_VALIDATION), "test": list(GLYPH_TEST)}
    yield (f"Qwen-Image glyphs, shift {SHIFT:g}", model, lambda glyph: glyph_sample_loop(model, glyph, steps=args.steps), sets,
           lambda r, o: capped_psnr(r, o, float(np.ptp(r))), {"sigmas": scheduler.sigmas})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=["demo", "qwen"])
    parser.add_argument("--shifts", nargs="+", type=float, default=[1.0, 3.0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--full-steps", nargs="+", type=int, default=[7, 9, 13])
    parser.add_argument("--out", default="docs/research-data/plan-refine.md")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    torch.set_num_threads(1)
    command = shlex.join(["python", "contrib/benchmarks/plan_refine.py", *sys.argv[1:]])
    lines = [f"## {args.model}, {args.steps} steps", "", f"Command: `{command}`", "",
             "Mean PSNR (dB) of the kept placement on the held-out samples; the gain over the old default in brackets; "
             "runs: generations of the calibration samples with tap by the check and the refinement; s: make_plan's time "
             "(CPU, one thread, shared cores).", "",
             "| case | full | setting | cost model | kept | placement | calibration | validation | test | runs | s |",
             "|---|---:|---|---|---|---|---:|---:|---:|---:|---:|"]
    for title, target, generate, sets, metric, options in (demo_cases if args.model == "demo" else qwen_cases)(args):
        references = {name: [as_arrays(generate(s))[0] for s in sets[name]] for name in ("validation", "test")}
        for count in args.full_steps:
            old = None
            for setting, extra in SETTINGS.items():
                start = time.perf_counter()
                plan = make_plan(target, lambda: [generate(s) for s in sets["calibration"]], full_steps=count, num_steps=args.steps,
                                 **options, **extra)
                seconds = time.perf_counter() - start
                calibration = {"planned": plan.planned_psnr, "grid": plan.grid_psnr, "refined": plan.refined_psnr}[plan.kept]
                with tap.accelerate(target, plan.config):
                    held = {name: float(np.mean([metric(r, as_arrays(generate(s))[0]) for r, s in zip(refs, sets[name])]))
                            for name, refs in references.items()}
                old = old or held
                gains = {name: "" if held is old else f" ({held[name] - old[name]:+.2f})" for name in held}
                lines.append(f"| {title} | {count} | {setting} | {plan.cost_model} | {plan.kept} | {plan.steps} | "
                             f"{'-' if calibration is None else f'{calibration:.2f}'} | {held['validation']:.2f}{gains['validation']} | "
                             f"{held['test']:.2f}{gains['test']} | {plan.evaluations} | {seconds:.0f} |")
                print(lines[-1], flush=True)
    with Path(args.out).open("a") as file:
        file.write("\n".join(lines) + "\n\n")


if __name__ == "__main__":
    main()
