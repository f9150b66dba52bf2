"""What per-sample decisions cost against deciding once per batch, and what they buy.

    python contrib/benchmarks/per_sample.py

The demo pipeline generates 4 prompts in one batch (classifier-free guidance, 50 steps) under the
probe-refresh schedule, deciding per sample (tap's default) and once per batch. Each image is
compared with the same prompt and seed generated alone; wall-clock is the median of 3 runs after
one untimed. Writes a Markdown table (``--out``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

import tap
from tap.cli.metrics import psnr
from tap_plugins.demo import load_demo_pipeline

PROMPTS, STEPS, GUIDANCE = ["A", "g", "7", "R"], 50, 3.0


def generate(pipe, prompts, seeds):
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    return pipe(prompts, num_inference_steps=STEPS, guidance_scale=GUIDANCE, generator=generators, output_type="pt").images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thresholds", nargs="+", type=float, default=[0.1, 0.2, 0.3])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="docs/research-data/per-sample.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    pipe = load_demo_pipeline()
    pipe.set_progress_bar_config(disable=True)
    seeds = range(len(PROMPTS))
    lines = [
        f"Command: `{' '.join(['python contrib/benchmarks/per_sample.py', *sys.argv[1:]])}`",
        "",
        f"Demo pipeline, prompts {' '.join(PROMPTS)} in one batch (seeds 0-3), guidance {GUIDANCE}, {STEPS} steps, "
        f"probe-refresh (signal `change`), CPU, 1 thread, median of {args.repeats}.",
        "",
        "| threshold | decided | batch time (s) | transformer calls | full steps (summed over samples) | worst PSNR vs alone (dB) |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for threshold in args.thresholds:
        for per_sample in (True, False):
            with tap.accelerate(pipe, schedule="probe-refresh", schedule_options={"threshold": threshold}, per_sample=per_sample):
                generate(pipe, PROMPTS, seeds)
                times = []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    batch = generate(pipe, PROMPTS, seeds)
                    times.append(time.perf_counter() - start)
                stats = tap.stats(pipe)
                alone = [generate(pipe, [prompt], [seed]) for seed, prompt in zip(seeds, PROMPTS)]
            worst = min(psnr(a[0].permute(1, 2, 0).numpy(), b.permute(1, 2, 0).numpy()) for a, b in zip(alone, batch))
            label = "per sample" if per_sample else "per batch"
            lines.append(f"| {threshold} | {label} | {statistics.median(times):.2f} | {stats.steps} | {stats.full_steps} | {worst:.2f} |")
            print(lines[-1], flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
