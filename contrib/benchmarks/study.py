"""Research studies behind tap's defaults: which selection rule and which schedule win.

Every configuration runs through tap's runtime and `tap bench`'s measurement (same samples, PSNR
and SSIM against full compute, block evaluations counted). The tables in docs/research.md come
from these commands:

    python contrib/benchmarks/study.py selection --intervals 4 6 8
    python contrib/benchmarks/study.py schedule
    python contrib/benchmarks/study.py placement
    python contrib/benchmarks/study.py oracle
    python contrib/benchmarks/study.py smoothing --intervals 4 6 8
    python contrib/benchmarks/study.py placement-search --intervals 4 6 8
    python contrib/benchmarks/study.py placement-in-sample --intervals 4 6 8
    python contrib/benchmarks/study.py selection --intervals 4 6 8 --dtype bfloat16
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path

import attrs
import numpy as np
import torch

import tap
from tap.family import Candidate, active_set
from tap.cli.bench import Bench, BenchSettings
from tap.cli.peers import Method, tap_method
from tap.cli.report import markdown_table
from tap.runtime import build_schedule

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

# Per-token selection between taylor orders 1 and 2 with spatially consistent choices: losses
# box-filtered over neighbouring tokens before the argmin (`smooth`; the demo model's 256 tokens are
# a row-major 16x16 grid), or a switch away from order 1 only on a large relative gain (`margin`).
SMOOTHING = {
    "fixed taylor 1": {"orders": (1,), "selector": "fixed"},
    "token taylor 1-2, cosine": {"orders": (1, 2), "distance": "cosine"},
    "smooth 3 (1D), cosine": {"orders": (1, 2), "distance": "cosine", "selector": "smooth", "selector_options": {"window": 3}},
    "smooth 5 (1D), cosine": {"orders": (1, 2), "distance": "cosine", "selector": "smooth", "selector_options": {"window": 5}},
    "smooth 3x3 (2D), cosine": {"orders": (1, 2), "distance": "cosine", "selector": "smooth", "selector_options": {"window": 3, "width": 16}},
    "smooth 5x5 (2D), cosine": {"orders": (1, 2), "distance": "cosine", "selector": "smooth", "selector_options": {"window": 5, "width": 16}},
    "margin 0.1, cosine": {"orders": (1, 2), "distance": "cosine", "selector": "margin", "selector_options": {"margin": 0.1}},
    "margin 0.3, cosine": {"orders": (1, 2), "distance": "cosine", "selector": "margin", "selector_options": {"margin": 0.3}},
    "smooth 3x3 (2D), l2": {"orders": (1, 2), "distance": "l2", "selector": "smooth", "selector_options": {"window": 3, "width": 16}},
}


SCHEDULE_FAMILIES = {
    "fixed taylorseer 2 (TaylorSeer)": dict(predictor="taylorseer", orders=(2,), selector="fixed"),
    "fixed taylor 1": dict(orders=(1,), selector="fixed"),
    "token taylor 1-2, cosine": dict(orders=(1, 2), distance="cosine"),
}
REFRESH = {"error": [(0.02, 6), (0.05, 8), (0.1, 10), (0.2, 12)], "change": [(0.1, 12), (0.15, 12), (0.2, 12), (0.3, 12)]}


def grid_methods(configurations: dict[str, dict], intervals: list[int]) -> list[Method]:
    """Each configuration on the fixed grid at each interval."""
    return [
        tap_method(name, f"interval={n}", tap.TAPConfig(interval=n, **config))
        for name, config in configurations.items()
        for n in intervals
    ]


def schedule_methods(intervals: list[int]) -> list[Method]:
    """Each family on the fixed grid and with probe-driven refresh, to compare at equal full-step counts."""
    methods = []
    for name, config in SCHEDULE_FAMILIES.items():
        for n in intervals:
            methods.append(tap_method(f"{name}, fixed grid", f"interval={n}", tap.TAPConfig(interval=n, **config)))
        for signal, settings in REFRESH.items():
            for threshold, gap in settings:
                options = {"signal": signal, "threshold": threshold, "min_gap": 2, "max_gap": gap}
                methods.append(tap_method(f"{name}, probe-refresh", f"{signal}>{threshold},max_gap={gap}",
                                          tap.TAPConfig(schedule="probe-refresh", schedule_options=options, **config)))
    return methods


def residual_change_profile(bench: Bench, prompt: str, seed: int) -> np.ndarray:
    """||r_i - r_(i-1)|| / ||r_i|| per step under full compute: how fast the block-stack residual moves."""
    handle = tap.enable(bench.pipe, interval=1)
    residuals = []
    handle.runtime.observe(lambda context, step, residual: residuals.append(residual.float()))
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
        count = len(build_schedule(tap.TAPConfig(interval=n)).planned_full_steps(bench.settings.steps))
        methods.append(tap_method("fixed taylor 1, uniform grid", f"interval={n}", tap.TAPConfig(interval=n)))
        for label, weights in (("residual change", change), ("sqrt residual change", np.sqrt(change))):
            steps = placement(weights, count)
            methods.append(tap_method(f"fixed taylor 1, placed by {label}", f"{count} asked: {steps}",
                                      tap.TAPConfig(schedule="listed", schedule_options={"steps": steps})))
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
        methods.append(tap_method("fixed taylor 1", f"interval={n}", tap.TAPConfig(interval=n)))
        methods.append(tap_method("per token taylor 1-2, cosine", f"interval={n}", tap.TAPConfig.preset("token", interval=n)))
        for orders in ((1, 2), (0, 1, 2)):
            methods.append(Method(f"oracle per token, taylor {orders[0]}-{orders[-1]} (true residual; no speedup)", f"interval={n}", "oracle",
                                  lambda pipe, n=n, o=orders: oracle_selection(pipe, bench.adapter, bench.blocks, n, o)))
    return methods


PLACED = {"fixed taylor 1": {"orders": (1,), "selector": "fixed"}}
CALIBRATION = (("g", "A", "7"), (1,))  # prompts and seeds of tap tune's placement search; the test samples use seed 0


def placement_search_methods(intervals: list[int], bench: Bench, in_sample: bool = False) -> list[Method]:
    """Each configuration on the uniform grid, and with its full steps moved by `tap tune`'s placement
    stage (coordinate descent, 2 sweeps) on calibration samples that are not test samples, or, with
    ``in_sample``, on the test samples themselves: a bound on what one placement can gain for them."""
    from tap.cli.tune import Tuner

    prompts, seeds = (bench.settings.prompts, bench.settings.seeds) if in_sample else CALIBRATION
    tuned_on = "the test samples" if in_sample else "other samples"
    settings = BenchSettings(prompts=prompts, seeds=seeds, steps=bench.settings.steps, repeats=1, peers=False)
    methods = []
    with tempfile.TemporaryDirectory() as folder:
        for name, config in PLACED.items():
            for n in intervals:
                tuner = Tuner(settings, Path(folder) / f"{name}-{n}.jsonl", target_speedup=1.0, target_psnr=None)
                placed = tuner.run({f"interval={n}": {"interval": n}}, {name: config}, keep=1, sweeps=2)
                listed = tap.TAPConfig.from_dict(placed.config)
                steps = list(listed.schedule_options.get("steps", ()))
                methods.append(tap_method(f"{name}, uniform grid", f"interval={n}", tap.TAPConfig(interval=n, **config)))
                methods.append(tap_method(f"{name}, placed by tap tune on {tuned_on}", f"from interval={n}: {steps}", listed))
    return methods


STUDIES = {
    "selection": lambda intervals, bench: grid_methods(SELECTION, intervals),
    "smoothing": lambda intervals, bench: grid_methods(SMOOTHING, intervals),
    "schedule": lambda intervals, bench: schedule_methods(intervals),
    "placement": placement_methods,
    "placement-search": placement_search_methods,
    "placement-in-sample": lambda intervals, bench: placement_search_methods(intervals, bench, in_sample=True),
    "oracle": oracle_methods,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", choices=sorted(STUDIES))
    parser.add_argument("--intervals", nargs="+", type=int, default=[4, 6, 8])
    parser.add_argument("--prompts", nargs="+", default=["A", "g", "7", "R"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--out", default="docs/research-data")
    args = parser.parse_args()
    settings = BenchSettings(prompts=tuple(args.prompts), seeds=tuple(args.seeds), steps=args.steps, repeats=1, peers=False, dtype=args.dtype)
    bench = Bench.load(settings)
    study = STUDIES[args.study]
    records = bench.run(study(args.intervals, bench))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = args.study if args.dtype == "float32" else f"{args.study}-{args.dtype}"
    (out / f"{name}.json").write_text(json.dumps([attrs.asdict(r) for r in records], indent=2) + "\n")
    table = markdown_table(records)
    (out / f"{name}.md").write_text(f"Command: `python contrib/benchmarks/study.py {' '.join(sys.argv[1:])}`\n\n" + table)
    print(table)


if __name__ == "__main__":
    main()
