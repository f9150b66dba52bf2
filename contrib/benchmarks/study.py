"""Research studies behind tap's defaults: which selection rule and which schedule win.

Every configuration runs through tap's runtime and `tap bench`'s measurement (same samples, PSNR
and SSIM against full compute, block evaluations counted). The tables in docs/research.md come
from these commands:

    python contrib/benchmarks/study.py selection --intervals 4 6 8
    python contrib/benchmarks/study.py schedule
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import attrs

import tap
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


STUDIES = {"selection": selection_methods, "schedule": schedule_methods}


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
    records = Bench(settings).run(STUDIES[args.study](args.intervals))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.study}.json").write_text(json.dumps([attrs.asdict(r) for r in records], indent=2) + "\n")
    table = markdown_table(records)
    (out / f"{args.study}.md").write_text(f"Command: `python contrib/benchmarks/study.py {' '.join(sys.argv[1:])}`\n\n" + table)
    print(table)


if __name__ == "__main__":
    main()
