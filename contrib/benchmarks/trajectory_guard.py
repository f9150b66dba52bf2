"""The trajectory guard measured: step-to-step ratios of the stack input's motion, quality after edits, cost.

    python contrib/benchmarks/trajectory_guard.py ratios     # untouched runs, and the ratio at edited steps
    python contrib/benchmarks/trajectory_guard.py quality    # PSNR with no guard, the guard, and tap.invalidate by hand
    python contrib/benchmarks/trajectory_guard.py cost       # seconds per generation with the guard on and off

The demo pipeline, one torch thread. Edits: the latents scaled by 0.5, or mixed with noise as
0.7 z + 0.7 n, by a callback_on_step_end. ``ratios`` also runs the Qwen-Image glyph model of
second_model.py when run from contrib/benchmarks. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
from diffusers import FlowMatchEulerDiscreteScheduler

import tap
from tap.api import resolve_adapter
from tap.cli.metrics import psnr
from tap_plugins.demo import load_demo_pipeline

EDITS = {
    "scale 0.5": lambda z: z * 0.5,
    "re-noise": lambda z: 0.7 * z + 0.7 * torch.randn(z.shape, generator=torch.Generator().manual_seed(1)),
}


class MotionRecorder:
    """Records each call's stack input and gives max over samples of d_k / d_{k-1}, d_k = ||x_k - x_{k-1}||."""

    def __init__(self, model) -> None:
        adapter = resolve_adapter(model, None)
        self.inputs: list[torch.Tensor] = []
        self.handle = adapter.blocks(model)[0].register_forward_pre_hook(
            lambda m, args, kwargs: self.inputs.append(adapter.stack_input(args, kwargs).clone()), with_kwargs=True)

    def ratios(self) -> dict[int, float]:
        """{call index: ratio} for this run's calls (from the third), then forget them."""
        xs, self.inputs = self.inputs, []
        moved = [(xs[i] - xs[i - 1]).flatten(1).norm(dim=1) for i in range(1, len(xs))]
        return {i + 1: float((moved[i] / moved[i - 1].clamp_min(1e-12)).max()) for i in range(1, len(moved))}


def edited_run(pipe, steps: int, at: int, edit: str | None, prompts="A", seeds=(0,), after=None):
    def callback(_, index, t, tensors):
        if index == at:
            tensors["latents"] = EDITS[edit](tensors["latents"])
            if after is not None:
                after()
        return tensors

    given = {"callback_on_step_end": callback} if edit else {}
    return [pipe(p, num_inference_steps=steps, generator=torch.Generator().manual_seed(s), output_type="np", **given).images[0]
            for p in prompts for s in seeds]


def ratios(pipe) -> None:
    recorder = MotionRecorder(pipe.transformer)
    config = pipe.scheduler.config
    print("| model | shift | steps | largest ratio |\n|---|---|---|---:|")
    for shift in (3.0, 1.0):
        pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(config, shift=shift)
        for steps in (4, 8, 12, 20, 28, 50, 100):
            largest = 0.0
            for prompt in "Ag7":
                edited_run(pipe, steps, 0, None, prompts=prompt)
                largest = max(largest, max(recorder.ratios().values()))
            print(f"| demo | {shift:g} | {steps} | {largest:.2f} |", flush=True)
    pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(config)
    print("\n| edit | steps | edited step | ratio there | largest elsewhere |\n|---|---|---|---:|---:|")
    for edit in EDITS:
        for steps, at in ((20, 8), (50, 20), (28, 3), (28, 25), (100, 50), (12, 5)):
            edited_run(pipe, steps, at, edit)
            found = recorder.ratios()
            there = found.pop(at + 1)
            print(f"| {edit} | {steps} | {at} | {there:.2f} | {max(found.values()):.2f} |", flush=True)
    recorder.handle.remove()
    try:
        from second_model import glyph_sample_loop, load_trained
    except ImportError:
        return
    model = load_trained()
    recorder = MotionRecorder(model)
    print("\n| model | steps | largest ratio |\n|---|---|---:|")
    for steps in (4, 8, 12, 20, 50, 100):
        largest = 0.0
        for glyph in "Be3":
            glyph_sample_loop(model, glyph, steps=steps)
            largest = max(largest, max(recorder.ratios().values()))
        print(f"| Qwen-Image glyphs | {steps} | {largest:.2f} |", flush=True)


def quality(pipe) -> None:
    print("| steps | edited step | full steps | edit | no guard | guard | tap.invalidate by hand |\n|---|---|---|---|---:|---:|---:|")
    for steps, at, interval in ((50, 20, 6), (28, 8, None), (50, 20, None)):
        extra = {} if interval is None else {"interval": interval}
        for edit in EDITS:
            run = lambda after=None: edited_run(pipe, steps, at, edit, prompts="Ag7", seeds=(0, 1), after=after)  # noqa: E731
            reference, scores = run(), []
            for guard, by_hand in ((False, False), (True, False), (False, True)):
                with tap.accelerate(pipe, trajectory_guard=guard, **extra) as handle:
                    images = run(handle.invalidate if by_hand else None)
                scores.append(statistics.mean(map(psnr, reference, images)))
            print(f"| {steps} | {at} | {f'interval {interval}' if interval else 'default'} | {edit} | "
                  + " | ".join(f"{q:.2f}" for q in scores) + " |", flush=True)


def cost(pipe, rounds: int = 7) -> None:
    generate = lambda: edited_run(pipe, 50, 0, None)  # noqa: E731
    generate()
    seconds = {True: [], False: []}
    for _ in range(rounds):
        for guard in (True, False):
            with tap.accelerate(pipe, trajectory_guard=guard):
                start = time.perf_counter()
                generate()
                seconds[guard].append(time.perf_counter() - start)
    on, off = statistics.median(seconds[True]), statistics.median(seconds[False])
    print(f"| guard | median (s) | rounds (s) |\n|---|---:|---|\n| on | {on:.3f} | {', '.join(f'{s:.3f}' for s in seconds[True])} |\n"
          f"| off | {off:.3f} | {', '.join(f'{s:.3f}' for s in seconds[False])} |\n\ncost: {100 * (on / off - 1):+.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["ratios", "quality", "cost"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    warnings.simplefilter("ignore")
    pipe = load_demo_pipeline()
    pipe.set_progress_bar_config(disable=True)
    {"ratios": ratios, "quality": quality, "cost": cost}[args.what](pipe)


if __name__ == "__main__":
    main()
