"""cache-dit's DBCache with each of its calibrators (none, TaylorSeer, FoCa, DMD) on the demo model, next to tap.

    python contrib/benchmarks/cache_dit_calibrators.py [--steps 28 50] [--thresholds 0.1 0.2 0.4]

For each step count, threshold and calibrator: the share of steps on which cache-dit ran the
last block (its computed steps; tap's from ``tap.stats``) and the PSNR against full compute, averaged over prompts A, g
and 7 at seed 0; tap at interval 6 (the former default) as the reference point. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import statistics

import torch

import tap
from tap.cli.metrics import psnr
from tap.cli.peers import CACHE_DIT_CALIBRATORS, cache_dit_dbcache
from tap_plugins.demo import load_demo_pipeline

PROMPTS = ("A", "g", "7")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[28, 50])
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.1, 0.2, 0.4])
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # cache-dit logs every enable and disable
    pipe = load_demo_pipeline()
    pipe.set_progress_bar_config(disable=True)
    blocks = [*pipe.transformer.transformer_blocks, *pipe.transformer.single_transformer_blocks]
    computed = []
    blocks[-1].register_forward_hook(lambda *_: computed.append(1))

    def images(steps: int):
        computed.clear()
        result = [pipe(p, num_inference_steps=steps, generator=torch.Generator().manual_seed(0), output_type="np").images[0] for p in PROMPTS]
        return result, len(computed) / (steps * len(PROMPTS))

    print("| steps | method | threshold | computed steps | PSNR (dB) |\n|---|---|---|---|---|")
    for steps in args.steps:
        reference, _ = images(steps)
        with tap.accelerate(pipe, interval=6) as handle:  # tap's skipped blocks are still called (and pass through)
            ours, _ = images(steps)
            share = handle.stats().full_steps / steps  # the last generation's full steps
        print(f"| {steps} | tap (former default) | interval 6 | {share:.2f} | {statistics.mean(map(psnr, reference, ours)):.2f} |")
        for calibrator in (None, *CACHE_DIT_CALIBRATORS):
            for threshold in args.thresholds:
                with contextlib.redirect_stdout(io.StringIO()), cache_dit_dbcache(pipe, blocks, steps, threshold, calibrator):
                    theirs, share = images(steps)
                print(f"| {steps} | cache-dit DBCache {calibrator or '(no calibrator)'} | {threshold} | {share:.2f} | "
                      f"{statistics.mean(map(psnr, reference, theirs)):.2f} |", flush=True)


if __name__ == "__main__":
    main()
