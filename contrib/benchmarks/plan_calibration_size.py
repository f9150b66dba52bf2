"""Does `tap.plan` place better from more calibration prompts? The DP's placement from 3, 8 and 16 prompts, held out.

    python contrib/benchmarks/plan_calibration_size.py --steps 50 --full-steps 7 9 13
    python contrib/benchmarks/plan_calibration_size.py --steps 28 --full-steps 5 7 10

On the demo model at each shift, one recording (``tap.planning.record``) per calibration set, all with seed 1:
g, A, 7 (make_plan's usual three); those and G, H, J, K, L; those and N, O, P, T, U, V, W, Y (none of them among the
validation prompts C, E, 4, n, seed 2, or the test prompts B, R, x, 3, Q, k, 5, M, seed 0). The ``squared`` and
``coherent-gain`` models place the full steps by the DP on each Gram matrix (averaged over its generations), and
each placement is generated on the validation and test prompts (mean PSNR against full compute). No self-check:
this isolates the DP's placement. Appends a Markdown table to ``--out``; CPU, one thread.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import numpy as np
import torch

import tap
from tap.config import TAPConfig
from tap.planning import TOKENS, as_arrays, best_placement, make_costs, record
from tap.psnr import PSNR_CAP

from plan_samples import arguments, demo_sets, listed, set_shift, test_bench

CALIBRATION_SETS = ("gA7", "gA7GHJKL", "gA7GHJKLNOPTUVWY")  # one prompt per character, seed 1
COST_MODELS = ("squared", "coherent-gain")


def main() -> None:
    from tap.cli.metrics import psnr

    args = arguments(__doc__.splitlines()[0], shifts=[1.0, 3.0], full_steps=[7, 9, 13], out="docs/research-data/plan-calibration-size.md").parse_args()
    torch.set_grad_enabled(False)
    torch.set_num_threads(1)
    bench = test_bench(args.steps)
    shipped = bench.pipe.scheduler.config
    held = {name: samples for name, samples in demo_sets().items() if name != "calibration"}
    family = TAPConfig().family()
    command = shlex.join(["python", "contrib/benchmarks/plan_calibration_size.py", *sys.argv[1:]])
    lines = [f"## Demo model, {args.steps} steps", "", f"Command: `{command}`", "",
             "| shift | full | cost model | calibration prompts | DP placement | validation | test |", "|---|---:|---|---:|---|---:|---:|"]
    for shift in args.shifts:
        set_shift(bench, shipped, shift)
        references = {name: [as_arrays(bench.generate(*s)[0])[0] for s in samples] for name, samples in held.items()}
        scores = {}

        def score(placement):
            if placement not in scores:
                with tap.accelerate(bench.pipe, listed(placement, args.steps)):
                    scores[placement] = {name: float(np.mean([min(psnr(r, as_arrays(bench.generate(*s)[0])[0]), PSNR_CAP)
                                                              for r, s in zip(references[name], samples)]))
                                         for name, samples in held.items()}
            return scores[placement]

        grams = {}
        for prompts in CALIBRATION_SETS:
            recorder, _ = record(bench.pipe, lambda: [bench.generate(p, 1)[0] for p in prompts], args.steps, TAPConfig(), TOKENS)
            grams[len(prompts)] = (recorder.gram / recorder.generations, recorder.mean_sigmas())
        for count in args.full_steps:
            for model in COST_MODELS:
                for size, (gram, sigmas) in grams.items():
                    placement = tuple(best_placement(make_costs(model, gram, family, sigmas)[0], count)[0])
                    result = score(placement)
                    lines.append(f"| {shift:g} | {count} | {model} | {size} | {list(placement)} | {result['validation']:.2f} | {result['test']:.2f} |")
                    print(lines[-1], flush=True)
    with Path(args.out).open("a") as file:
        file.write("\n".join(lines) + "\n\n")


if __name__ == "__main__":
    main()
