"""Quality against the step count on the trained Qwen-Image glyph model (contrib/second-model).

    python contrib/benchmarks/step_counts_second_model.py [--steps 12 20 28 50 100] [--budgets 8 9 10]
        [--placements index grid centered]

Glyphs B, e and 3 through the hand-written loop of contrib/benchmarks/second_model.py (shift 3,
guidance in the loop, the step index and count given through cache_context): tap's default, the
former default (interval 6), and K full steps placed as in step_counts.py. Mean PSNR of the final
latents against full compute. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics

import torch

import tap
from second_model import glyph_sample_loop, load_trained, psnr
from step_counts import centered_placement, grid_interval, index_placement

GLYPHS = ("B", "e", "3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[12, 20, 28, 50, 100])
    parser.add_argument("--budgets", type=int, nargs="+", default=[8, 9, 10])
    parser.add_argument("--placements", nargs="*", default=["index"], choices=["index", "grid", "centered"])
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    model = load_trained()
    print("| steps | rule | full steps | PSNR (dB) |\n|---|---|---|---|")
    for steps in args.steps:
        reference = {glyph: glyph_sample_loop(model, glyph, steps=steps) for glyph in GLYPHS}
        rules = [("default", tap.TAPConfig()), ("interval 6 (the former default)", tap.TAPConfig(interval=6))]
        for budget in (b for b in args.budgets if b < steps):
            if "index" in args.placements:
                rules.append((f"index, K={budget}", tap.TAPConfig(schedule="listed", schedule_options={"steps": index_placement(steps, budget)})))
            if "centered" in args.placements:
                rules.append((f"centered, K={budget}", tap.TAPConfig(schedule="listed", schedule_options={"steps": centered_placement(steps, budget)})))
            if "grid" in args.placements:
                rules.append((f"grid, K={budget}: every {grid_interval(steps, budget)}", tap.TAPConfig(interval=grid_interval(steps, budget))))
        for name, rule in rules:
            with tap.accelerate(model, rule) as handle:
                quality = statistics.mean(psnr(glyph_sample_loop(model, glyph, steps=steps), reference[glyph]) for glyph in GLYPHS)
                full = handle.stats().full_steps
            print(f"| {steps} | {name} | {full} | {quality:.2f} |", flush=True)


if __name__ == "__main__":
    main()
