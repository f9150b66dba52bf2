"""What the studies of ``tap plan`` share: calibration, validation and test samples of the demo model and the
trained Qwen-Image glyph model, the test bench at a scheduler shift, each model as a case to plan for, their
common arguments, and a placement's quality on the test prompts."""

from __future__ import annotations

import argparse
from typing import Any, Callable, Iterator

import attrs
import numpy as np
from diffusers import FlowMatchEulerDiscreteScheduler

from tap.cli.bench import Bench, BenchSettings, Measurement, quality
from tap.config import TAPConfig
from tap.cli.peers import tap_method
from tap.psnr import PSNR_CAP, capped_psnr

CALIBRATION = ("g", "A", "7")  # generated with seed 1
VALIDATION = ("C", "E", "4", "n")  # generated with seed 2
TEST = ("B", "R", "x", "3", "Q", "k", "5", "M")  # generated with seed 0; no calibration prompt among them
# tap.plan's cost model and check before docs/research.md section 17 switched the default: the studies made before it
# (sections 13 and 16) pass these, so that they still compute what their data show
PLAN_BEFORE_THE_SWITCH = dict(cost_model="squared", check_margin=0.0)
# The glyph model's samples: glyphs, each from seed 0's noise (contrib/benchmarks/second_model.py's loop)
GLYPH_SETS = {"calibration": ("g", "A", "7"), "validation": ("C", "E", "4", "n"), "test": ("B", "e", "3", "Q", "R", "x", "k", "M")}


def demo_sets(validation: tuple[str, ...] = VALIDATION, validation_seed: int = 2) -> dict[str, list[tuple[str, int]]]:
    """The demo model's calibration (seed 1), validation and test (seed 0) samples as (prompt, seed) pairs."""
    return {"calibration": [(p, 1) for p in CALIBRATION], "validation": [(p, validation_seed) for p in validation],
            "test": [(p, 0) for p in TEST]}


@attrs.frozen
class Case:
    """One model at one schedule to plan for: what ``make_plan`` targets, how one sample is generated, the sample
    sets, the held-out metric (reference array, output array), and the sampler's sigmas where a hand-written
    loop has to give them (None: the pipeline's scheduler has them)."""

    label: str  # short, for table rows
    title: str  # long, for table headings
    note: str  # the samples and metric, for table notes
    target: Any
    generate: Callable[[Any], Any]
    sets: dict[str, list]
    metric: Callable[[np.ndarray, np.ndarray], float]
    sigmas: Any = None


def plan_cases(model: str, steps: int, shifts: list[float], validation: tuple[str, ...] = VALIDATION,
               validation_seed: int = 2) -> Iterator[Case]:
    """The demo model at each shift (its pipeline's scheduler set to it), or the trained Qwen-Image glyph model at
    its own shift (``model`` "demo" or "qwen"), each with ``steps`` sampling steps."""
    if model == "demo":
        from tap.cli.metrics import psnr

        bench, sets = test_bench(steps), demo_sets(validation, validation_seed)
        shipped = bench.pipe.scheduler.config
        for shift in shifts:
            set_shift(bench, shipped, shift)
            yield Case(f"demo, shift {shift:g}", f"Demo model, shift {shift:g}, {steps} steps",
                       f"Calibration g, A, 7 (seed 1); validation {', '.join(validation)} (seed {validation_seed}); "
                       "test B, R, x, 3, Q, k, 5, M (seed 0). Step sizes read from the pipeline's scheduler while recording.",
                       bench.pipe, lambda sample: bench.generate(*sample)[0], sets, lambda r, o: min(psnr(r, o), PSNR_CAP))
        return
    from second_model import SHIFT, glyph_sample_loop, load_trained

    glyphs = load_trained()
    scheduler = FlowMatchEulerDiscreteScheduler(shift=SHIFT)
    scheduler.set_timesteps(steps)
    yield Case(f"Qwen-Image glyphs, shift {SHIFT:g}", f"Trained Qwen-Image glyph model, shift {SHIFT:g}, {steps} steps",
               "Guidance 4.0 in the hand-written loop; calibration g, A, 7; validation C, E, 4, n; test B, e, 3, Q, R, x, k, M "
               "(each from seed 0's noise); PSNR of the final latents. Step sizes from the loop's scheduler sigmas, given explicitly.",
               glyphs, lambda glyph: glyph_sample_loop(glyphs, glyph, steps=steps), {k: list(v) for k, v in GLYPH_SETS.items()},
               lambda r, o: capped_psnr(r, o, float(np.ptp(r))), scheduler.sigmas)


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
