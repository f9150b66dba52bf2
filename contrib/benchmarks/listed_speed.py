"""A listed schedule costs nothing per step: tap's grid against the same full steps as a ``listed`` schedule.

    python contrib/benchmarks/listed_speed.py

The demo pipeline, 50 steps, interval 6 (full steps 0, 6, ..., 48) and the same steps listed;
the two are interleaved and each is timed as the median of ``--repeats`` generations after one untimed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import tap
from tap_plugins.demo import load_demo_pipeline

STEPS, INTERVAL = 50, 6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(1)
    pipe = load_demo_pipeline()
    pipe.set_progress_bar_config(disable=True)
    grid = tap.TAPConfig(interval=INTERVAL)
    listed = tap.TAPConfig(schedule="listed", schedule_options={"steps": list(range(0, STEPS, INTERVAL)), "num_steps": STEPS})
    times: dict[str, list[float]] = {"grid": [], "listed": []}
    images = {}
    for repeat in range(args.repeats + 1):
        for name, config in (("grid", grid), ("listed", listed)):
            with tap.accelerate(pipe, config):
                start = time.perf_counter()
                images[name] = pipe("A", num_inference_steps=STEPS, generator=torch.Generator().manual_seed(0), output_type="pt").images
                if repeat:
                    times[name].append(time.perf_counter() - start)
    assert torch.equal(images["grid"], images["listed"])
    for name, seconds in times.items():
        print(f"{name}: median {statistics.median(seconds):.3f} s over {len(seconds)} (min {min(seconds):.3f})")
    print(f"listed / grid: {statistics.median(times['listed']) / statistics.median(times['grid']):.3f}; images identical")


if __name__ == "__main__":
    main()
