"""How much of a placement's held-out gain is the prompts'? Per-prompt PSNR of several placements, and the spread.

    python contrib/benchmarks/plan_prompt_spread.py --shift 1 --steps 50 \
        --placements 0,2,4,8,13,18,25,35,44 0,2,4,7,11,15,21,29,40 0,2,5,8,11,16,22,31,42

On the demo model, each placement (a listed schedule; the first is the baseline) generates the validation
prompts (C, E, 4, n, seed 2) and the test prompts (B, R, x, 3, Q, k, 5, M, seed 0) of the plan studies; the
table gives each prompt's PSNR against full compute, and for each other placement the mean difference from
the baseline over each set with its standard error (standard deviation of the per-prompt differences over
sqrt(n)). Appends Markdown to ``--out``; CPU, one thread.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
from pathlib import Path

import torch

import tap
from tap.psnr import PSNR_CAP

from plan_samples import demo_sets, listed, set_shift, test_bench


def main() -> None:
    from tap.cli.metrics import psnr

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shift", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--placements", nargs="+", required=True, help="comma-separated full steps; the first is the baseline")
    parser.add_argument("--out", default="docs/research-data/plan-prompt-spread.md")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    torch.set_num_threads(1)
    placements = [[int(s) for s in text.split(",")] for text in args.placements]
    bench = test_bench(args.steps)
    set_shift(bench, bench.pipe.scheduler.config, args.shift)
    sets = {name: samples for name, samples in demo_sets().items() if name != "calibration"}
    samples = [(name, s) for name, items in sets.items() for s in items]
    references = [bench.generate(*s)[0] for _, s in samples]
    table = []
    for placement in placements:
        with tap.accelerate(bench.pipe, listed(placement, args.steps)):
            table.append([min(psnr(r, bench.generate(*s)[0]), PSNR_CAP) for r, (_, s) in zip(references, samples)])
    command = shlex.join(["python", "contrib/benchmarks/plan_prompt_spread.py", *sys.argv[1:]])
    lines = [f"## Demo model, shift {args.shift:g}, {args.steps} steps", "", f"Command: `{command}`", "",
             "| set | prompt (seed) | " + " | ".join(str(p) for p in placements) + " |", "|---|---|" + "---:|" * len(placements)]
    for row, (name, (prompt, seed)) in enumerate(samples):
        lines.append(f"| {name} | {prompt} ({seed}) | " + " | ".join(f"{column[row]:.2f}" for column in table) + " |")
    lines += ["", "Mean difference from the first placement (dB) ± its standard error:", ""]
    for index, placement in enumerate(placements[1:], start=1):
        cells = []
        for name in (*sets, "both"):
            rows = [i for i, (set_name, _) in enumerate(samples) if name in (set_name, "both")]
            differences = [table[index][i] - table[0][i] for i in rows]
            cells.append(f"{name} {statistics.mean(differences):+.2f} ± {statistics.stdev(differences) / len(differences) ** 0.5:.2f}")
        lines.append(f"- {placement}: " + "; ".join(cells))
    with Path(args.out).open("a") as file:
        file.write("\n".join(lines) + "\n\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
