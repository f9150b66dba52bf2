"""Which selection rule wins? Quality of tap configurations at equal full-step budgets on one model.

Every configuration runs through tap's runtime and `tap bench`'s measurement (same samples, PSNR
and SSIM against full compute). Usage (the tables in docs/research.md come from this command):

    python contrib/benchmarks/selection_study.py --intervals 4 6 8 --out docs/research-data
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import attrs

import tap
from tap.bench import Bench, BenchSettings
from tap.peers import Method
from tap.report import markdown_table

PAPER_HORIZONS = (-4, -3, -2, -1, 0)

CONFIGS = {
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


def methods(intervals: list[int]) -> list[Method]:
    return [
        Method(name, f"interval={n}", "tap", lambda pipe, c=config, n=n: tap.accelerate(pipe, tap.TAPConfig(interval=n, **c)))
        for name, config in CONFIGS.items()
        for n in intervals
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intervals", nargs="+", type=int, default=[4, 6, 8])
    parser.add_argument("--prompts", nargs="+", default=["A", "g", "7", "R"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--out", default="selection-study")
    args = parser.parse_args()
    settings = BenchSettings(prompts=tuple(args.prompts), seeds=tuple(args.seeds), steps=args.steps, repeats=1, peers=False)
    records = Bench(settings).run(methods(args.intervals))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "selection.json").write_text(json.dumps([attrs.asdict(r) for r in records], indent=2) + "\n")
    table = markdown_table(records)
    (out / "selection.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
