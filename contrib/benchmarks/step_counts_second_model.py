"""Quality against the step count on the trained Qwen-Image glyph model (contrib/second-model).

    python contrib/benchmarks/step_counts_second_model.py [--steps 12 20 28 50 100] [--budgets 8 9 10]

Glyphs B, e and 3 through the hand-written loop of contrib/benchmarks/second_model.py (shift 3,
guidance in the loop): tap's default, and K full steps placed by the step index as in
step_counts.py. Mean PSNR of the final latents against full compute. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics

import torch

import tap
from second_model import glyph_sample_loop, load_trained, psnr
from step_counts import index_placement

GLYPHS = ("B", "e", "3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[12, 20, 28, 50, 100])
    parser.add_argument("--budgets", type=int, nargs="+", default=[8, 9, 10])
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    model = load_trained()
    print("| steps | rule | full steps | PSNR (dB) |\n|---|---|---|---|")
    for steps in args.steps:
        reference = {glyph: glyph_sample_loop(model, glyph, steps=steps) for glyph in GLYPHS}
        rules = [("default (interval 6)", tap.TAPConfig())]
        rules += [(f"index, K={budget}", tap.TAPConfig(schedule="listed", schedule_options={"steps": index_placement(steps, budget)}))
                  for budget in args.budgets if budget < steps]
        for name, rule in rules:
            with tap.accelerate(model, rule) as handle:
                quality = statistics.mean(psnr(glyph_sample_loop(model, glyph, steps=steps), reference[glyph]) for glyph in GLYPHS)
                full = handle.stats().full_steps
            print(f"| {steps} | {name} | {full} | {quality:.2f} |", flush=True)


if __name__ == "__main__":
    main()
