"""`tap.plan` end to end: the old default, the new default and the new default with refinement, on held-out samples.

    python contrib/benchmarks/plan_refine.py demo --shifts 1 3 --steps 50 --full-steps 7 9 13
    python contrib/benchmarks/plan_refine.py demo --shifts 1 3 --steps 28 --full-steps 5 7 10
    python contrib/benchmarks/plan_refine.py qwen --steps 50 --full-steps 7 9 13
    python contrib/benchmarks/plan_refine.py qwen --steps 28 --full-steps 5 7 10

For each model, shift, step count and number of full steps, ``make_plan`` runs with each setting on the
calibration samples of plan_samples.py (demo: prompts g, A, 7 with seed 1; the trained Qwen-Image glyph
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

from plan_samples import plan_cases

SETTINGS = {
    "old default": dict(cost_model="squared", check_margin=0.0),
    "default": {},
    "default + refine": dict(refine=6),
}


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
    for case in plan_cases(args.model, args.steps, args.shifts):
        target, generate, sets, metric = case.target, case.generate, case.sets, case.metric
        references = {name: [as_arrays(generate(s))[0] for s in sets[name]] for name in ("validation", "test")}
        for count in args.full_steps:
            old = None
            for setting, extra in SETTINGS.items():
                start = time.perf_counter()
                plan = make_plan(target, lambda: [generate(s) for s in sets["calibration"]], full_steps=count, num_steps=args.steps,
                                 sigmas=case.sigmas, **extra)
                seconds = time.perf_counter() - start
                calibration = {"planned": plan.planned_psnr, "grid": plan.grid_psnr, "refined": plan.refined_psnr}[plan.kept]
                with tap.accelerate(target, plan.config):
                    held = {name: float(np.mean([metric(r, as_arrays(generate(s))[0]) for r, s in zip(refs, sets[name])]))
                            for name, refs in references.items()}
                old = old or held
                gains = {name: "" if held is old else f" ({held[name] - old[name]:+.2f})" for name in held}
                lines.append(f"| {case.label} | {count} | {setting} | {plan.cost_model} | {plan.kept} | {plan.steps} | "
                             f"{'-' if calibration is None else f'{calibration:.2f}'} | {held['validation']:.2f}{gains['validation']} | "
                             f"{held['test']:.2f}{gains['test']} | {plan.evaluations} | {seconds:.0f} |")
                print(lines[-1], flush=True)
    with Path(args.out).open("a") as file:
        file.write("\n".join(lines) + "\n\n")


if __name__ == "__main__":
    main()
