"""Extrapolate in the scheduler's time instead of the step index: does it predict better?

    python contrib/benchmarks/timestep_coordinates.py

tap's predictors place the cached full steps at their step indices (0, 6, 12, ...). With a
shifted flow-matching schedule the steps are uneven in sigma (on the demo model sigma moves
about 8 times faster per step at the end than at the start), so a forecast in sigma might track
the features better. This experiment swaps the positions for -sigma (the transformer's
``timestep`` argument, increasing along the trajectory) by patching the runtime's weight
computation, on the demo model, 50 steps, prompts A g 7 R, seed 0, at intervals 4, 6, 8.
Writes docs/research-data/timestep-coordinates.md.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import attrs
import torch

import tap
import tap.runtime
from tap.bench import Bench, BenchSettings
from tap.family import active_set
from tap.peers import Method
from tap.report import markdown_table

CONFIGS = {
    "fixed taylor 1": dict(orders=(1,), selector="fixed"),
    "fixed taylor 2": dict(orders=(2,), selector="fixed"),
    "fixed taylorseer 2": dict(predictor="taylorseer", orders=(2,), selector="fixed"),
}


@contextlib.contextmanager
def timestep_positions(pipe, config: tap.TAPConfig):
    """tap with every candidate's weights computed at positions -sigma instead of step indices."""
    times: dict[int, float] = {}
    handle = tap.enable(pipe, config)
    runtime = handle.runtime
    begin_step = runtime.begin_step

    def record_time(args, kwargs):
        begin_step(args, kwargs)
        times[runtime.states.get_state().step] = -runtime.adapter.generation_key(args, kwargs)[0]

    def in_time(family, cached_steps, step):
        active = active_set(family, cached_steps, step)
        positions = torch.tensor([times[s] for s in cached_steps], dtype=torch.float64)
        weights = torch.zeros_like(active.weights)
        for row, (predictor, target) in enumerate(zip(active.predictors, active.targets)):
            weights[row, len(cached_steps) - predictor.history :] = predictor.weights(positions, times[target])
        return attrs.evolve(active, weights=weights)

    runtime.begin_step = record_time
    original, tap.runtime.active_set = tap.runtime.active_set, in_time
    try:
        yield handle
    finally:
        tap.runtime.active_set = original
        tap.disable(pipe)


def main() -> None:
    methods = [
        Method(f"{name}, {'sigma' if in_time else 'step index'}", f"interval={n}", "tap",
               lambda pipe, c=tap.TAPConfig(interval=n, **config), t=in_time: timestep_positions(pipe, c) if t else tap.accelerate(pipe, c))
        for name, config in CONFIGS.items()
        for n in (4, 6, 8)
        for in_time in (False, True)
    ]
    bench = Bench(BenchSettings(prompts=("A", "g", "7", "R"), seeds=(0,), steps=50, repeats=1, peers=False))
    table = markdown_table(bench.run(methods))
    out = Path("docs/research-data/timestep-coordinates.md")
    out.write_text("Command: `python contrib/benchmarks/timestep_coordinates.py`\n\n" + table)
    print(table)


if __name__ == "__main__":
    main()
