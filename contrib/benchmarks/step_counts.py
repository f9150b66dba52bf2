"""Quality against the step count: tap's default, the former default (interval 6), and K full steps placed several ways.

    python contrib/benchmarks/step_counts.py [--steps 8 12 20 28 50 100] [--shifts 3 1] [--budgets 6 8 10] [--seeds 0]
        [--placements index span sigma grid centered]

The demo pipeline, prompts A, g and 7 at each seed, its scheduler at each shift. For each step
count: tap's default (at least 9 full steps on a grid that ends half an interval early, runs of
16 steps or fewer left alone), the former default (a full step every 6), and for each budget K a
listed schedule with K full steps at round(i * n / K) ("index"), at round(i * (n - 1) / (K - 1)),
the last step included ("span"), at the steps whose sigma is nearest to K values evenly spaced
from the first sigma down to 0 ("sigma": equal sigma gaps), every (n - 1) // (K - 1) steps from
step 0 ("grid"), or that grid moved to end half an interval before the last step ("centered").
Mean PSNR of the images against full compute. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import logging
import statistics

import torch
from diffusers import FlowMatchEulerDiscreteScheduler

import tap
from tap.cli.metrics import psnr
from tap.runtime import build_schedule
from tap_plugins.demo import load_demo_pipeline

PROMPTS = ("A", "g", "7")


def index_placement(steps: int, budget: int) -> list[int]:
    return sorted({round(i * steps / budget) for i in range(budget)})


def grid_interval(steps: int, budget: int) -> int:
    """The widest interval whose grid from step 0 still holds ``budget`` full steps: the default's rule."""
    return build_schedule(tap.TAPConfig(full_steps=budget)).interval_for(steps)


def centered_placement(steps: int, budget: int) -> list[int]:
    """Step 0, then the grid of :func:`grid_interval` moved to end half an interval before the last step: the default's placement."""
    return build_schedule(tap.TAPConfig(full_steps=budget)).planned_full_steps(steps)


def span_placement(steps: int, budget: int) -> list[int]:
    """K full steps evenly over the whole run, the first and the last step included."""
    return sorted({round(i * (steps - 1) / (budget - 1)) for i in range(budget)})


def sigma_placement(sigmas: torch.Tensor, budget: int) -> list[int]:
    """The steps whose sigma is nearest to ``budget`` targets evenly spaced from sigmas[0] down to 0."""
    first = float(sigmas[0])
    return sorted({int((sigmas - first * (1 - j / budget)).abs().argmin()) for j in range(budget)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[8, 12, 20, 28, 50, 100])
    parser.add_argument("--shifts", type=float, nargs="+", default=[3.0, 1.0])
    parser.add_argument("--budgets", type=int, nargs="+", default=[6, 8, 10])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--placements", nargs="*", default=["index", "span", "sigma"], choices=["index", "span", "sigma", "grid", "centered"])
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    pipe = load_demo_pipeline()
    pipe.set_progress_bar_config(disable=True)
    config = pipe.scheduler.config

    def images(steps: int):
        return [pipe(p, num_inference_steps=steps, generator=torch.Generator().manual_seed(seed), output_type="np").images[0]
                for p in PROMPTS for seed in args.seeds]

    print("| shift | steps | rule | full steps | PSNR (dB) |\n|---|---|---|---|---|")
    for shift in args.shifts:
        pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(config, shift=shift)
        for steps in args.steps:
            reference = images(steps)
            pipe.scheduler.set_timesteps(steps)
            sigmas = pipe.scheduler.sigmas[:steps]
            rules = [("default", tap.TAPConfig()), ("interval 6 (the former default)", tap.TAPConfig(interval=6))]
            for budget in args.budgets:
                if budget >= steps:
                    continue
                placements = {"index": index_placement(steps, budget), "span": span_placement(steps, budget),
                              "sigma": sigma_placement(sigmas, budget), "centered": centered_placement(steps, budget)}
                for name, placed in placements.items():
                    if name not in args.placements:
                        continue
                    rules.append((f"{name}, K={budget}", tap.TAPConfig(schedule="listed", schedule_options={"steps": placed})))
                if "grid" in args.placements:
                    rules.append((f"grid, K={budget}: every {grid_interval(steps, budget)}", tap.TAPConfig(interval=grid_interval(steps, budget))))
            for name, rule in rules:
                with tap.accelerate(pipe, rule) as handle:
                    ours = images(steps)
                    full = handle.stats().full_steps
                quality = statistics.mean(map(psnr, reference, ours))
                print(f"| {shift:g} | {steps} | {name} | {full} | {quality:.2f} |", flush=True)


if __name__ == "__main__":
    main()
