"""Where nine full steps of 50 sit on the grid, on the trained Qwen-Image glyph model (contrib/second-model).

    cd contrib/benchmarks && python grid_phase_second_model.py

Glyphs B, e and 3 through the hand-written loop of second_model.py (shift 3, guidance in the
loop), 50 steps. Step 0, then a full step every 6 steps from step o, for o = 1 to 7 (nine full
steps each; o = 6 is the grid from step 0, the former default), and three uneven placements of
nine. PSNR of the final latents against full compute, mean and per glyph. Prints a Markdown table.
"""

from __future__ import annotations

import statistics

import torch

import tap
from second_model import glyph_sample_loop, load_trained, psnr

GLYPHS, STEPS, BUDGET = ("B", "e", "3"), 50, 9


def shifted_grid(offset: int) -> list[int]:
    """Step 0, then every 6th step from ``offset``: nine full steps."""
    return sorted({0, *range(offset, STEPS, 6)})[:BUDGET]


PLACEMENTS = {
    **{f"0, then every 6 from {o}": shifted_grid(o) for o in range(1, 8)},
    "gaps 5, the last 7": [0, 5, 10, 15, 20, 25, 30, 35, 42],
    "gaps growing 4 to 7": [0, 4, 9, 15, 21, 27, 34, 41, 48],
    "gaps 7, then 4 and 3": [0, 7, 14, 21, 28, 35, 42, 46, 49],
}


def main() -> None:
    torch.set_grad_enabled(False)
    model = load_trained()
    reference = {glyph: glyph_sample_loop(model, glyph, steps=STEPS) for glyph in GLYPHS}
    print("| placement | full steps | PSNR (dB) | B, e, 3 |\n|---|---|---|---|")
    for name, placed in PLACEMENTS.items():
        assert len(placed) == BUDGET, (name, placed)
        with tap.accelerate(model, schedule="listed", schedule_options={"steps": placed}):
            quality = [psnr(glyph_sample_loop(model, glyph, steps=STEPS), reference[glyph]) for glyph in GLYPHS]
        print(f"| {name} | {placed} | {statistics.mean(quality):.2f} | {', '.join(f'{q:.1f}' for q in quality)} |", flush=True)


if __name__ == "__main__":
    main()
