"""Research studies behind tap's defaults: which selection rule and which schedule win.

Every configuration runs through tap's runtime and `tap bench`'s measurement (same samples, PSNR
and SSIM against full compute, block evaluations counted). The tables in docs/research.md come
from these commands:

    python contrib/benchmarks/study.py selection --intervals 4 6 8
    python contrib/benchmarks/study.py schedule
    python contrib/benchmarks/study.py placement
    python contrib/benchmarks/study.py oracle
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

import attrs
import numpy as np
import torch

import tap
from tap.family import Candidate, active_set
from tap.bench import Bench, BenchSettings
from tap.peers import Method
from tap.report import markdown_table

PAPER_HORIZONS = (-4, -3, -2, -1, 0)

SELECTION = {
    "paper (taylor 0-2 x k-4..k, cosine, modulated-input, token)": dict(orders=(0, 1, 2), horizons=PAPER_HORIZONS, distance="cosine"),
    "fixed reuse (FORA)": dict(predictor="reuse", orders=(0,), selector="fixed"),
    "fixed taylorseer 1": dict(predictor="taylorseer", orders=(1,), selector="fixed"),
    "fixed taylorseer 2 (TaylorSeer)": dict(predictor="taylorseer", orders=(2,), selector="fixed"),
    "fixed taylor 1": dict(orders=(1,), selector="fixed"),
    "fixed taylor 2": dict(orders=(2,), selector="fixed"),
    "token taylor 0-2, cosine": dict(orders=(0, 1, 2), distance="cosine"),
    "token taylor 0-2 x k-4..k, change": dict(orders=(0, 1, 2), horizons=PAPER_HORIZONS, distance="change"),
    "token taylor 1-2, cosine": dict(orders=(1, 2), distance="cosine"),
    "token taylor 1-2, change": dict(orders=(1, 2), distance="change"),
    "token taylor 1-2, l2": dict(orders=(1, 2), distance="l2"),
    "token taylor 1-2, l2, first-block": dict(orders=(1, 2), distance="l2", probe="first-block"),
    "global taylor 1-2, l2": dict(orders=(1, 2), distance="l2", selector="global"),
    "token taylorseer 1-2, l2": dict(predictor="taylorseer", orders=(1, 2), distance="l2"),
}


SCHEDULE_FAMILIES = {
    "fixed taylorseer 2 (TaylorSeer)": dict(predictor="taylorseer", orders=(2,), selector="fixed"),
    "fixed taylor 1": dict(orders=(1,), selector="fixed"),
    "token taylor 1-2, cosine": dict(orders=(1, 2), distance="cosine"),
}
REFRESH = {"error": [(0.02, 6), (0.05, 8), (0.1, 10), (0.2, 12)], "change": [(0.1, 12), (0.15, 12), (0.2, 12), (0.3, 12)]}


def selection_methods(intervals: list[int]) -> list[Method]:
    return [
        Method(name, f"interval={n}", "tap", lambda pipe, c=config, n=n: tap.accelerate(pipe, tap.TAPConfig(interval=n, **c)))
        for name, config in SELECTION.items()
        for n in intervals
    ]


def schedule_methods(intervals: list[int]) -> list[Method]:
    """Each family on the fixed grid and with probe-driven refresh, to compare at equal full-step counts."""
    methods = []
    for name, config in SCHEDULE_FAMILIES.items():
        for n in intervals:
            methods.append(Method(f"{name}, fixed grid", f"interval={n}", "tap", lambda pipe, c=config, n=n: tap.accelerate(pipe, tap.TAPConfig(interval=n, **c))))
        for signal, settings in REFRESH.items():
            for threshold, gap in settings:
                options = {"signal": signal, "threshold": threshold, "min_gap": 2, "max_gap": gap}
                methods.append(Method(f"{name}, probe-refresh", f"{signal}>{threshold},max_gap={gap}", "tap",
                                      lambda pipe, c=config, o=options: tap.accelerate(pipe, tap.TAPConfig(schedule="probe-refresh", schedule_options=o, **c))))
    return methods


def residual_change_profile(bench: Bench, prompt: str, seed: int) -> np.ndarray:
    """||r_i - r_(i-1)|| / ||r_i|| per step under full compute: how fast the block-stack residual moves."""
    handle = tap.enable(bench.pipe, interval=1)
    residuals, exit_step = [], handle.runtime.exit

    def record(output):
        x, _ = handle.runtime.states.get_state().pending
        residuals.append(handle.runtime.adapter.stack_output(output).float() - x.float())
        return exit_step(output)

    handle.runtime.exit = record
    try:
        bench.generate(prompt, seed)
    finally:
        tap.disable(bench.pipe)
    return np.array([0.0] + [float((residuals[i] - residuals[i - 1]).norm() / residuals[i].norm()) for i in range(1, len(residuals))])


def placement(weights: np.ndarray, count: int) -> list[int]:
    """Step 0, then a full step wherever the cumulative weight crosses another 1/count of its total."""
    cumulative = np.cumsum(weights)
    return sorted({0, *(int(np.searchsorted(cumulative, cumulative[-1] * j / count)) for j in range(1, count))})


def placement_methods(intervals: list[int], bench: Bench) -> list[Method]:
    """Order-1 forecast with full steps placed from a calibration run (prompt g, seed 1, not a test sample)."""
    change = residual_change_profile(bench, "g", 1)
    methods = []
    for n in intervals:
        count = len([s for s in range(bench.settings.steps) if s == 0 or s % n == 0])
        methods.append(Method("fixed taylor 1, uniform grid", f"interval={n}", "tap", lambda pipe, n=n: tap.accelerate(pipe, tap.TAPConfig(interval=n))))
        for label, weights in (("residual change", change), ("sqrt residual change", np.sqrt(change))):
            steps = placement(weights, count)
            methods.append(Method(f"fixed taylor 1, placed by {label}", f"{count} asked: {steps}", "tap",
                                  lambda pipe, steps=steps: tap.accelerate(pipe, tap.TAPConfig(schedule="listed", schedule_options={"steps": steps}))))
    return methods


@contextlib.contextmanager
def oracle_selection(pipe, adapter, blocks, interval: int, orders: tuple[int, ...]):
    """An upper bound for per-token selection: every step runs the whole stack, but on the steps the
    fixed grid would predict, each token's output is replaced by the candidate prediction (taylor
    at ``orders``, from the grid's full steps) closest to that token's true residual."""
    family = tuple(Candidate(tap.get_predictor("taylor", order=o)) for o in orders)
    cache = {"steps": (), "r": None, "step": -1, "x": None}

    def before_first(module, args, kwargs):
        cache["x"] = adapter.stack_input(args, kwargs)

    def after_last(module, args, kwargs, output):
        x, step = cache["x"], cache["step"]
        r = adapter.stack_output(output).float() - x.float()
        if step % interval == 0 or not cache["steps"]:
            cache["steps"] = (*cache["steps"], step)[-3:]
            cache["r"] = r[None] if cache["r"] is None else torch.cat([cache["r"], r[None]])[-3:]
            return output
        active = active_set(family, cache["steps"], step)
        weights = active.weights.to(r)  # [C, H] over the cached steps
        predictions = torch.einsum("ch,hbnd->cbnd", weights, cache["r"])
        choice = (predictions - r).square().sum(-1).argmin(0)  # [B, N]: the oracle's pick per token
        best = torch.gather(predictions, 0, choice[None, ..., None].expand(1, *predictions.shape[1:]))[0]
        return adapter.skip_output(args, kwargs, (x.float() + best).to(x.dtype))

    def new_step(module, args, kwargs):
        timestep, _ = adapter.generation_key(args, kwargs)
        if cache.get("t") is not None and timestep > cache["t"]:
            cache.update(steps=(), r=None, step=-1)
        cache["t"] = timestep
        cache["step"] += 1

    handles = [
        pipe.transformer.register_forward_pre_hook(new_step, with_kwargs=True),
        blocks[0].register_forward_pre_hook(before_first, with_kwargs=True),
        blocks[-1].register_forward_hook(after_last, with_kwargs=True),
    ]
    try:
        yield None
    finally:
        for handle in handles:
            handle.remove()


def oracle_methods(intervals: list[int], bench: Bench) -> list[Method]:
    methods = []
    for n in intervals:
        methods.append(Method("fixed taylor 1", f"interval={n}", "tap", lambda pipe, n=n: tap.accelerate(pipe, tap.TAPConfig(interval=n))))
        methods.append(Method("per token taylor 1-2, cosine", f"interval={n}", "tap", lambda pipe, n=n: tap.accelerate(pipe, tap.TAPConfig.preset("token", interval=n))))
        for orders in ((1, 2), (0, 1, 2)):
            methods.append(Method(f"oracle per token, taylor {orders[0]}-{orders[-1]} (true residual; no speedup)", f"interval={n}", "oracle",
                                  lambda pipe, n=n, o=orders: oracle_selection(pipe, bench.adapter, bench.blocks, n, o)))
    return methods


STUDIES = {"selection": selection_methods, "schedule": schedule_methods, "placement": placement_methods, "oracle": oracle_methods}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", choices=sorted(STUDIES))
    parser.add_argument("--intervals", nargs="+", type=int, default=[4, 6, 8])
    parser.add_argument("--prompts", nargs="+", default=["A", "g", "7", "R"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--out", default="docs/research-data")
    args = parser.parse_args()
    settings = BenchSettings(prompts=tuple(args.prompts), seeds=tuple(args.seeds), steps=args.steps, repeats=1, peers=False)
    bench = Bench(settings)
    study = STUDIES[args.study]
    records = bench.run(study(args.intervals, bench) if args.study in ("placement", "oracle") else study(args.intervals))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.study}.json").write_text(json.dumps([attrs.asdict(r) for r in records], indent=2) + "\n")
    table = markdown_table(records)
    (out / f"{args.study}.md").write_text(f"Command: `python contrib/benchmarks/study.py {' '.join(sys.argv[1:])}`\n\n" + table)
    print(table)


if __name__ == "__main__":
    main()
