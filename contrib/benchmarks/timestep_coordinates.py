"""Extrapolate in the scheduler's time instead of the step index: does it predict better?

    python contrib/benchmarks/timestep_coordinates.py

tap's predictors place the cached full steps at their step indices (0, 6, 12, ...). With a
shifted flow-matching schedule the steps are uneven in sigma (on the demo model sigma moves
about 8 times faster per step at the end than at the start), so a forecast in sigma might track
the features better. This experiment swaps the positions for -sigma (the transformer's
``timestep`` argument, increasing along the trajectory) with a predictor that wraps each candidate
and computes its weights at those positions, on the demo model, 50 steps, prompts A g 7 R, seed 0, at intervals 4, 6, 8.
Writes docs/research-data/timestep-coordinates.md.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import torch

import tap
from tap.cli.bench import Bench, BenchSettings
from tap.cli.peers import Method
from tap.cli.report import markdown_table
from tap.predictor import LinearPredictor

CONFIGS = {
    "fixed taylor 1": dict(orders=(1,), selector="fixed"),
    "fixed taylor 2": dict(orders=(2,), selector="fixed"),
    "fixed taylorseer 2": dict(predictor="taylorseer", orders=(2,), selector="fixed"),
}


@attrs.frozen
class AtPositions(LinearPredictor):
    """``inner`` with its weights computed at ``positions[step]`` instead of the step indices."""

    name = "at-positions"
    inner: LinearPredictor
    positions: tuple[float, ...]

    @property
    def history(self) -> int:
        return self.inner.history

    @property
    def exact_degree(self) -> int:
        return 0  # exact for polynomials in the positions, not in the step index

    def degrade(self, available: int):
        inner = self.inner.degrade(available)
        return None if inner is None else attrs.evolve(self, inner=inner)

    def _weights(self, steps, target):
        positions = torch.tensor([self.positions[int(s)] for s in steps], dtype=torch.float64)
        return self.inner._weights(positions, self.positions[int(target)])


def timesteps_of_a_run(pipe, bench: Bench) -> tuple[float, ...]:
    """The transformer's timestep at each step of one full-compute generation (read by a forward pre-hook)."""
    transformer = tap.api.find_transformer(pipe)
    adapter = tap.api.resolve_adapter(transformer, None)
    times: list[float] = []

    def record(module, args, kwargs):
        t = adapter.generation_key(args, kwargs)[0]
        if not times or times[-1] != t:  # classifier-free guidance calls share their step's timestep
            times.append(t)

    handle = transformer.register_forward_pre_hook(record, with_kwargs=True)
    try:
        bench.generate(*bench.samples[0])
    finally:
        handle.remove()
    return tuple(times)


def in_sigma(config: tap.TAPConfig, times: tuple[float, ...]) -> tap.TAPConfig:
    """``config`` with every candidate placed at positions -sigma (the negated timestep: increasing along the run)."""
    positions = tuple(-t for t in times)
    return config.replace(candidates=tuple(attrs.evolve(c, predictor=AtPositions(c.predictor, positions)) for c in config.family()))


def main() -> None:
    bench = Bench.load(BenchSettings(prompts=("A", "g", "7", "R"), seeds=(0,), steps=50, repeats=1, peers=False))
    times = timesteps_of_a_run(bench.pipe, bench)
    methods = [
        Method(f"{name}, {'sigma' if sigma else 'step index'}", f"interval={n}", "tap",
               lambda pipe, c=in_sigma(config, times) if sigma else config: tap.accelerate(pipe, c))
        for name, options in CONFIGS.items()
        for n in (4, 6, 8)
        for config in [tap.TAPConfig(interval=n, **options)]
        for sigma in (False, True)
    ]
    table = markdown_table(bench.run(methods))
    out = Path("docs/research-data/timestep-coordinates.md")
    out.write_text("Command: `python contrib/benchmarks/timestep_coordinates.py`\n\n" + table)
    print(table)


if __name__ == "__main__":
    main()
