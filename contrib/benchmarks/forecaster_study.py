"""The 2026 forecasters (foca, dmd, spectrum) side by side with tap's polynomial predictors, held out.

    OMP_NUM_THREADS=1 python contrib/benchmarks/forecaster_study.py predict-cost
    OMP_NUM_THREADS=1 python contrib/benchmarks/forecaster_study.py demo --steps 50 --shifts 3   (then 1; then --steps 28)
    OMP_NUM_THREADS=1 python contrib/benchmarks/forecaster_study.py qwen --steps 50 --shifts 3   (then 1; then --steps 28)
    OMP_NUM_THREADS=1 python contrib/benchmarks/forecaster_study.py cache-dit --steps 50 --shifts 3 --thresholds 0.1 0.12 0.15 0.2

(docs/research-data/forecasters.md holds the exact command of each table; defaults: budgets 7 9 13, placements grid
and plan, every method.)

``demo``: the demo pipeline generating the test prompts (B R x 3 Q k 5 M, seed 0; plan_samples.TEST)
at each scheduler shift and step count. ``qwen``: the trained Qwen-Image glyph model
(contrib/second-model) on test glyphs B e 3 Q R x k M, CFG in the loop of second_model.py, copied
here with a ``shift`` parameter. For each full-step budget K, two placements: ``grid``, the default's
(``build_schedule(TAPConfig(full_steps=K)).planned_full_steps(n)``), and ``plan``, the DP placement of
``tap.planning.make_plan`` calibrated with the default family on the calibration prompts (g A 7,
seed 1 on the demo; glyphs g A 7 on the Qwen model), never on the test samples. make_plan's
self-check runs too (``--no-check`` skips it); what it would keep is recorded. Every method (each
predictor alone, selector fixed; per-token selection among several) then generates the test
samples with that placement: mean PSNR against full compute (images on the demo, final latents on
the Qwen model, capped at 100 dB) and wall seconds per generation.

``cache-dit``: cache-dit's DBCache (Fn=1, Bn=0, warm-up 1) with no calibrator, FoCa and DMD at each
threshold, on the demo's test prompts: their full steps (steps in which every block ran) as measured.

``predict-cost``: seconds per predicted step of each predictor on a [H, 1, 4096, 3072] float32 window
(FLUX-like), as the runtime computes it: linear predictors as its fused weighted sum, dmd in full.

Every run appends its tables to ``--out`` (default docs/research-data/forecasters.md), rewritten after
each measured cell so that partial results survive. Timings are on the CPU with one thread.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch
from diffusers import FlowMatchEulerDiscreteScheduler

import tap
from tap import TAPConfig
from tap.family import Candidate
from tap.psnr import PSNR_CAP
from tap.runtime import build_schedule

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "research-data" / "forecasters.md"
BASELINE = "taylor 1 (default)"


def predictors() -> dict[str, tap.Predictor]:
    get = tap.get_predictor
    return {
        BASELINE: get("taylor", order=1), "taylor 2": get("taylor", order=2), "taylorseer 2": get("taylorseer", order=2),
        "hermite 2": get("hermite", order=2), "foca": get("foca"), "dmd": get("dmd"), "spectrum": get("spectrum"),
    }


def methods(names: list[str] | None) -> dict[str, tuple[tuple[Candidate, ...], str]]:
    """Method name -> (candidates, selector): each predictor alone (fixed), and per-token selection."""
    alone = predictors()
    found = {name: ((Candidate(p),), "fixed") for name, p in alone.items()}
    for label, members in (("select {taylor 1, foca, spectrum}", (BASELINE, "foca", "spectrum")),
                           ("select {taylor 1, foca, spectrum, dmd}", (BASELINE, "foca", "spectrum", "dmd"))):
        found[label] = (tuple(Candidate(alone[m]) for m in members), "token")
    # Opt-in (only when named): dmd listed first. Where two candidates forecast the probe identically (dmd falls
    # back to taylor 1 per sample), the token selector keeps the first, so the order decides dmd's share.
    extra = {"select {dmd, taylor 1, foca, spectrum}": (tuple(Candidate(alone[m]) for m in ("dmd", BASELINE, "foca", "spectrum")), "token")}
    if names:
        found.update(extra)
        unknown = [n for n in names if n not in found]
        if unknown:
            raise SystemExit(f"unknown methods {unknown}; known: {list(found)}")
        found = {n: found[n] for n in names}
    return found


def listed_config(candidates, selector: str, placement: list[int], steps: int) -> TAPConfig:
    return TAPConfig(candidates=candidates, selector=selector, schedule="listed", schedule_options={"steps": list(placement), "num_steps": steps})


def grid_placement(steps: int, budget: int) -> list[int]:
    return build_schedule(TAPConfig(full_steps=budget)).planned_full_steps(steps)


def mean_shares(shares: list[dict]) -> dict:
    keys = sorted({key for share in shares for key in share})
    return {key: statistics.mean(share.get(key, 0.0) for share in shares) for key in keys}


# -- the two models ------------------------------------------------------------------------------
class Demo:
    """The demo pipeline on the test prompts (plan_samples), its scheduler at a given shift."""

    name = "demo"

    def __init__(self, samples: int | None = None) -> None:
        from plan_samples import CALIBRATION, TEST, Bench, BenchSettings

        self.calibration, self.test = CALIBRATION, TEST[:samples]
        self.base = Bench.load(BenchSettings(prompts=self.test, seeds=(0,), steps=50, repeats=1, peers=False), progress=False)
        self.shipped = self.base.pipe.scheduler.config
        self.bench = self.base
        self.base.generate(TEST[0], 0)  # warm-up

    def set(self, shift: float, steps: int) -> None:
        self.bench = self.base.with_steps(steps)
        self.bench.pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(self.shipped, shift=shift)

    def references(self):
        from tap.cli.bench import FULL

        self.bench.generate(self.test[0], 0)  # warm-up at this step count, untimed
        measured = self.bench.measure(FULL)
        self.refs = measured.images
        return measured.seconds / len(self.test)

    def evaluate(self, config: TAPConfig) -> tuple[float, float, float, dict]:
        """Mean PSNR, seconds per generation, mean full steps, mean candidate shares."""
        from tap.cli.bench import quality

        images, seconds, full, shares = {}, 0.0, [], []
        with tap.accelerate(self.bench.pipe, config) as handle:
            for prompt in self.test:
                images[(prompt, 0)], took = self.bench.generate(prompt, 0)
                seconds += took
                stats = handle.stats()
                full.append(stats.full_steps)
                shares.append(stats.candidate_share)
        return quality(self.refs, images)[0], seconds / len(self.test), statistics.mean(full), mean_shares(shares)

    def evaluate_method(self, method) -> tuple[float, float, float]:
        from tap.cli.bench import quality

        measured = self.bench.measure(method)
        return quality(self.refs, measured.images)[0], measured.seconds / len(self.test), measured.full_steps

    def plan(self, budget: int, check: bool):
        from plan_samples import PLAN_BEFORE_THE_SWITCH
        from tap.planning import make_plan

        bench = self.bench
        return make_plan(bench.pipe, lambda: [bench.generate(p, 1)[0] for p in self.calibration],
                         full_steps=budget, num_steps=bench.settings.steps, check=check, **PLAN_BEFORE_THE_SWITCH)


class Qwen:
    """The trained Qwen-Image glyph model (contrib/second-model), CFG 4 in a hand-written loop."""

    name = "qwen"
    calibration = ("g", "A", "7")
    test = ("B", "e", "3", "Q", "R", "x", "k", "M")

    def __init__(self, samples: int | None = None) -> None:
        from second_model import load_trained

        self.test = self.test[:samples]
        self.model = load_trained()
        self.shift, self.steps = 3.0, 50
        self.loop(self.test[0])  # warm-up

    def set(self, shift: float, steps: int) -> None:
        self.shift, self.steps = shift, steps

    def loop(self, glyph: str) -> torch.Tensor:
        from second_model import glyph_sample_loop

        return glyph_sample_loop(self.model, glyph, steps=self.steps, shift=self.shift)

    def references(self) -> float:
        self.loop(self.test[0])  # warm-up at this step count, untimed
        start = time.perf_counter()
        self.refs = {g: self.loop(g) for g in self.test}
        return (time.perf_counter() - start) / len(self.test)

    def evaluate(self, config: TAPConfig) -> tuple[float, float, float]:
        from second_model import psnr

        values, full, shares, seconds = [], [], [], 0.0
        with tap.accelerate(self.model, config):
            for glyph in self.test:
                start = time.perf_counter()
                final = self.loop(glyph)
                seconds += time.perf_counter() - start
                values.append(min(psnr(final, self.refs[glyph]), PSNR_CAP))
                stats = tap.stats(self.model)
                full.append(stats.full_steps)
                shares.append(stats.candidate_share)
        return statistics.mean(values), seconds / len(self.test), statistics.mean(full), mean_shares(shares)

    def plan(self, budget: int, check: bool):
        from plan_samples import PLAN_BEFORE_THE_SWITCH
        from tap.planning import make_plan

        return make_plan(self.model, lambda: [self.loop(g) for g in self.calibration], full_steps=budget, num_steps=self.steps, check=check,
                         **PLAN_BEFORE_THE_SWITCH)


# -- output ----------------------------------------------------------------------------------------
class Document:
    """The Markdown file: what it held before this run, then this run's sections, rewritten on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.prefix = path.read_text() if path.exists() else "# The 2026 forecasters side by side (raw tables)\n\nWritten by `contrib/benchmarks/forecaster_study.py`.\n"
        self.sections: list = []

    def add(self, render) -> None:
        self.sections.append(render)
        self.write()

    def write(self) -> None:
        self.path.write_text(self.prefix.rstrip("\n") + "\n\n" + "\n\n".join(render() for render in self.sections) + "\n")


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def command() -> str:
    return "OMP_NUM_THREADS=1 python contrib/benchmarks/forecaster_study.py " + " ".join(sys.argv[1:])


def study(args) -> None:
    target = (Demo if args.mode == "demo" else Qwen)(args.samples)
    chosen = methods(args.methods)
    doc = Document(Path(args.out))
    samples = (f"test prompts {' '.join(target.test)} at seed 0, images" if args.mode == "demo"
               else f"test glyphs {' '.join(target.test)}, final latents")
    for steps in args.steps:
        for shift in args.shifts:
            target.set(shift, steps)
            full_seconds = target.references()
            cells: dict = {}  # (method, placement, budget) -> (psnr, s/gen, full steps)
            placements: dict = {}  # (placement, budget) -> steps
            notes: list[str] = []
            header = (f"### {args.mode}, shift {shift:g}, {steps} steps\n\nCommand: `{command()}`\n\n"
                      f"{'Demo pipeline' if args.mode == 'demo' else 'Trained Qwen-Image glyph model, CFG 4'}, float32 CPU, 1 thread; "
                      f"{samples}, mean PSNR (dB, capped at {PSNR_CAP:g}) against full compute; s/gen: wall seconds per generation "
                      f"(full compute: {full_seconds:.3f} s). Plan: calibrated on {' '.join(target.calibration)} with the default family.\n")

            def render(header=header, cells=cells, placements=placements, notes=notes):
                lines = [header, "| method | placement | " + " | ".join(f"K={b} dB | Δ | s/gen" for b in args.budgets) + " |",
                         "|---|---|" + "---:|---:|---:|" * len(args.budgets)]
                for placement in args.placements:
                    for name in chosen:
                        row = []
                        for budget in args.budgets:
                            cell, base = cells.get((name, placement, budget)), cells.get((BASELINE, placement, budget))
                            if cell is None:
                                row.append("- | - | -")
                            else:
                                delta = f"{cell[0] - base[0]:+.2f}" if base is not None else "-"
                                row.append(f"{cell[0]:.2f} | {delta} | {cell[1]:.3f}")
                        lines.append(f"| {name} | {placement} | " + " | ".join(row) + " |")
                lines.append("")
                for (placement, budget), placed in sorted(placements.items(), key=lambda item: (item[0][0], item[0][1])):
                    lines.append(f"- {placement}, K={budget}: {placed}")
                lines += [f"- {note}" for note in notes]
                return "\n".join(lines)

            doc.add(render)
            for budget in args.budgets:
                if budget >= steps:
                    continue
                placements[("grid", budget)] = grid_placement(steps, budget)
                if "plan" in args.placements:
                    plan = target.plan(budget, args.check)
                    placements[("plan", budget)] = plan.planned
                    note = f"plan K={budget}: calibration {plan.calibration_seconds:.1f} s, planning {plan.planning_seconds:.2f} s"
                    if args.check:
                        note += (f"; the self-check would keep {plan.kept!r} (make_plan's uncentered grid {plan.grid}; calibration PSNR "
                                 f"planned {fmt(plan.planned_psnr)}, grid {fmt(plan.grid_psnr)} dB)")
                    notes.append(note)
                for placement in args.placements:
                    for name, (candidates, selector) in chosen.items():
                        config = listed_config(candidates, selector, placements[(placement, budget)], steps)
                        cells[(name, placement, budget)] = target.evaluate(config)
                        if selector != "fixed":
                            share = ", ".join(f"{k} {v:.2f}" for k, v in cells[(name, placement, budget)][3].items())
                            notes.append(f"{name}, {placement} K={budget}: share of predicted tokens: {share}")
                        print(f"{args.mode} shift {shift:g} steps {steps} {placement} K={budget} {name}: "
                              f"{cells[(name, placement, budget)][0]:.2f} dB {cells[(name, placement, budget)][1]:.3f} s/gen "
                              f"full {cells[(name, placement, budget)][2]}", flush=True)
                        doc.write()


def cache_dit_study(args) -> None:
    from tap.cli.peers import cache_dit_methods

    logging.disable(logging.WARNING)  # cache-dit logs every enable and disable
    target = Demo(args.samples)
    doc = Document(Path(args.out))
    for steps in args.steps:
        for shift in args.shifts:
            target.set(shift, steps)
            full_seconds = target.references()
            rows: list[str] = []
            header = (f"### cache-dit DBCache calibrators, demo, shift {shift:g}, {steps} steps\n\nCommand: `{command()}`\n\n"
                      f"Test prompts {' '.join(target.test)} at seed 0; DBCache Fn=1 Bn=0, warm-up 1 (tap.cli.peers.cache_dit_dbcache); "
                      f"full steps: mean steps in which every block ran; its other steps still run the first block. "
                      f"Full compute {full_seconds:.3f} s/gen; tap rows: the default predictor on the default grid of K full steps.\n\n"
                      "| method | setting | full steps | PSNR (dB) | s/gen |\n|---|---|---:|---:|---:|")
            doc.add(lambda header=header, rows=rows: "\n".join([header, *rows]))
            for budget in args.budgets:
                config = listed_config((Candidate(tap.get_predictor("taylor", order=1)),), "fixed", grid_placement(steps, budget), steps)
                value, seconds, full, _ = target.evaluate(config)
                rows.append(f"| tap taylor 1 (default) | grid K={budget} | {full:.1f} | {value:.2f} | {seconds:.3f} |")
                doc.write()
            for method in cache_dit_methods(target.bench.blocks, steps, list(args.thresholds)):
                if method.name.removeprefix("cache-dit-dbcache").lstrip("-") not in args.calibrators:
                    continue
                with contextlib.redirect_stdout(io.StringIO()):
                    value, seconds, full = target.evaluate_method(method)
                rows.append(f"| {method.name} | {method.setting} | {full:.1f} | {value:.2f} | {seconds:.3f} |")
                print(rows[-1], flush=True)
                doc.write()


def predict_cost(args) -> None:
    from tap.family import active_set

    torch.manual_seed(0)
    shape = (1, args.tokens, args.width)
    window = torch.randn(4, *shape)
    steps = (0, 6, 12, 18)  # evenly spaced: dmd fits all four
    step = 21
    rows = []
    for name, predictor in predictors().items():
        history = getattr(predictor, "history", 4)
        cached_steps = steps[-history:]
        cached = window[-history:]
        family = (Candidate(predictor),)

        active = active_set(family, cached_steps, step)  # the runtime caches it per (cached steps, step)

        def once():
            if active.weights is not None:  # tap.runtime's assemble: fused multiply-adds of the chosen weights
                weights = active.weights.to(cached.dtype)[torch.zeros(shape[:-1], dtype=torch.long)]
                predicted = weights[..., 0, None] * cached[0]
                for j in range(1, cached.shape[0]):
                    predicted.addcmul_(weights[..., j, None], cached[j])
                return predicted
            return active.predictors[0].predict(torch.tensor(cached_steps, dtype=torch.float64), cached, active.targets[0])

        once()
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            once()
            times.append(time.perf_counter() - start)
        rows.append(f"| {name} | {history} | {1000 * statistics.median(times):.1f} | {1000 * min(times):.1f} | {1000 * max(times):.1f} |")
        print(rows[-1], flush=True)
    doc = Document(Path(args.out))
    doc.add(lambda: "\n".join([
        f"### Cost per predicted step, [H, 1, {args.tokens}, {args.width}] float32, CPU, {torch.get_num_threads()} thread(s)\n",
        f"Command: `{command()}`\n",
        f"As the runtime computes one predicted step (selector fixed): linear predictors as tap.runtime's fused weighted sum over the "
        f"H cached residuals (weights from tap.family.active_set, computed once as the runtime caches them), dmd's predict in full; cached steps {steps} (their last H), "
        f"target {step}; {args.repeats} repeats after one warm-up.\n",
        "| predictor | H (cached residuals) | median ms | min ms | max ms |", "|---|---:|---:|---:|---:|", *rows]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["demo", "qwen", "cache-dit", "predict-cost"])
    parser.add_argument("--shifts", nargs="+", type=float, default=[3.0, 1.0])
    parser.add_argument("--steps", nargs="+", type=int, default=[50])
    parser.add_argument("--budgets", nargs="+", type=int, default=[7, 9, 13])
    parser.add_argument("--placements", nargs="+", choices=["grid", "plan"], default=["grid", "plan"])
    parser.add_argument("--methods", nargs="+", default=None, help="method labels (default: all)")
    parser.add_argument("--no-check", dest="check", action="store_false", help="skip make_plan's self-check")
    parser.add_argument("--thresholds", nargs="+", type=float, default=[0.1, 0.15, 0.2])
    parser.add_argument("--calibrators", nargs="+", default=["", "foca", "dmd"], help="cache-dit calibrators ('' for none)")
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--width", type=int, default=3072)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samples", type=int, default=None, help="only the first this many test samples (default: all 8)")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    {"demo": study, "qwen": study, "cache-dit": cache_dit_study, "predict-cost": predict_cost}[args.mode](args)


if __name__ == "__main__":
    main()
