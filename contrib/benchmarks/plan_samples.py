"""What the demo-model studies of ``tap plan`` share: calibration and test prompts, the test bench at a
scheduler shift, their common arguments, and a placement's quality on the test prompts."""

from __future__ import annotations

import argparse

from diffusers import FlowMatchEulerDiscreteScheduler

from tap.cli.bench import Bench, BenchSettings, Measurement, quality
from tap.config import TAPConfig
from tap.cli.peers import tap_method

CALIBRATION = ("g", "A", "7")  # generated with seed 1
TEST = ("B", "R", "x", "3", "Q", "k", "5", "M")  # generated with seed 0; no calibration prompt among them


def arguments(description: str, *, shifts: list[float], full_steps: list[int], out: str | None) -> argparse.ArgumentParser:
    """A parser with the studies' common options: scheduler shifts, step count, full-step budgets, output."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--shifts", nargs="+", type=float, default=shifts)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--full-steps", nargs="+", type=int, default=full_steps)
    parser.add_argument("--out", default=out)
    return parser


def test_bench(steps: int) -> Bench:
    """The demo pipeline set up to generate the test prompts (seed 0) with ``steps`` steps."""
    return Bench.load(BenchSettings(prompts=TEST, seeds=(0,), steps=steps, repeats=1, peers=False), progress=False)


def set_shift(bench: Bench, shipped, shift: float) -> None:
    """Give the bench's pipeline the shipped scheduler with another sigma shift."""
    bench.pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(shipped, shift=shift)


def listed(placement, steps: int) -> TAPConfig:
    """tap's default family with exactly ``placement`` as its full steps."""
    return TAPConfig(schedule="listed", schedule_options={"steps": list(placement), "num_steps": steps})


def test_quality(bench: Bench, references: Measurement, placement, name: str = "x") -> tuple[float, float]:
    """PSNR and SSIM of the test prompts generated with ``placement`` against the full-compute ``references``."""
    config = listed(placement, bench.settings.steps)
    return quality(references.images, bench.measure(tap_method(name, str(list(placement)), config)).images)
