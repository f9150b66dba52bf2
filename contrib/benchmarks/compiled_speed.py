"""Seconds per generation at FLUX.1-dev's size: eager and regionally compiled, full compute and tap, check_finite on and off.

    # on a GPU (FLUX.1-dev's architecture, random weights, bfloat16, 4096 image + 512 text tokens):
    python contrib/benchmarks/compiled_speed.py --steps 28 50
    # dry run on a CPU (a 3-block FLUX, 16 image tokens):
    python contrib/benchmarks/compiled_speed.py --tiny --dtype float32 --steps 20 --out /tmp/compiled-speed
    # eager rows only:
    python contrib/benchmarks/compiled_speed.py --no-compile

What it measures. A ``FluxTransformer2DModel`` with FLUX.1-dev's config (19 double and 38 single
blocks, 24 heads of 128, text width 4096, pooled width 768, 64 latent channels, guidance
embedding) and random weights samples a hand-written flow-matching Euler loop of N steps
(FlowMatchEulerDiscreteScheduler, shift 3) at batch 1. Each call runs inside
``transformer.cache_context("cond", step_index=i, num_inference_steps=N)``: that is how tap learns
the step count in a loop of one's own (README, "hand-written loop"; docs/production.md). It
times these rows, in this order, each at every step count N:

* eager: full compute; tap with the default ``TAPConfig()``; the same with ``check_finite=False``;
* compiled (regional compilation, ``transformer.compile_repeated_blocks(fullgraph=True)``, inductor):
  tap with ``TAPConfig()``, enabled first and compiled after as docs/production.md shows (the
  row the target is read from); then ``tap.disable`` (the blocks stay compiled as asked) and full
  compute; then tap with ``check_finite=False`` and tap with ``TAPConfig()`` again, each enabled on
  the compiled model (compile first, the other order, which ends in the same state: tap compiles
  each block's body with the settings given), so that the check's cost compares one order.

Each row is one untimed warm-up generation (the compilation happens there; full compute warms up
on 3 steps, tap on the whole run, since its schedule depends on N) and then ``--repeats`` timed
ones, each between two device synchronizations; the median is reported. For tap rows
``tap.stats(transformer)`` of the last generation gives the full steps; the ideal speedup is
N / full steps (what a step costing nothing when predicted would give), and "of ideal" is the
speedup over the matching full compute (eager over eager, compiled over compiled) divided by it.
The target: compiled tap >= 0.9 x ideal over compiled full compute. ``check_finite``'s cost is
tap's seconds with the check on over those with it off, less 1.

Only wall-clock is meaningful: the weights are random, so quality means nothing here (a
prediction that is not finite would show in the fallbacks column). Writes
``compiled_speed.json`` and ``compiled_speed.md`` under ``--out`` after every row (a run cut
short keeps what it measured) and prints the tables.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import diffusers
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
from tqdm import tqdm

import tap
from tap import TAPConfig

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
FLUX_DEV = dict(
    patch_size=1, in_channels=64, num_layers=19, num_single_layers=38, attention_head_dim=128, num_attention_heads=24,
    joint_attention_dim=4096, pooled_projection_dim=768, guidance_embeds=True, axes_dims_rope=(16, 56, 56),
)
TINY = dict(
    patch_size=1, in_channels=4, num_layers=1, num_single_layers=2, attention_head_dim=8, num_attention_heads=2,
    joint_attention_dim=16, pooled_projection_dim=8, guidance_embeds=True, axes_dims_rope=(2, 2, 4),
)
TINY_TOKENS, TINY_TEXT_TOKENS = 16, 8
SHIFT, GUIDANCE, FULL_WARMUP_STEPS = 3.0, 3.5, 3


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(config: dict, device: str, dtype: torch.dtype) -> FluxTransformer2DModel:
    """Random weights, initialised in the run's dtype on the run's device (float32 init of 12B parameters on a CPU takes minutes)."""
    torch.manual_seed(0)
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = FluxTransformer2DModel(**config)
    finally:
        torch.set_default_dtype(default_dtype)
    return model.eval().requires_grad_(False)


def make_inputs(model: FluxTransformer2DModel, tokens: int, text_tokens: int) -> dict:
    config, device, dtype = model.config, model.device, model.dtype
    side = int(round(tokens**0.5))
    if side * side != tokens:
        raise SystemExit(f"--tokens must be a square (a side x side latent grid), got {tokens}")
    generator = torch.Generator().manual_seed(0)
    ids = torch.zeros(side, side, 3)
    ids[..., 1], ids[..., 2] = torch.arange(side)[:, None], torch.arange(side)[None, :]
    return dict(
        latents=torch.randn(1, tokens, config.in_channels, generator=generator).to(device, dtype),
        encoder_hidden_states=torch.randn(1, text_tokens, config.joint_attention_dim, generator=generator).to(device, dtype),
        pooled_projections=torch.randn(1, config.pooled_projection_dim, generator=generator).to(device, dtype),
        img_ids=ids.reshape(-1, 3).to(device),
        txt_ids=torch.zeros(text_tokens, 3, device=device),
        guidance=torch.full((1,), GUIDANCE, device=device, dtype=torch.float32),
    )


@torch.inference_mode()
def generate(model: FluxTransformer2DModel, inputs: dict, steps: int) -> torch.Tensor:
    """A flow-matching Euler loop of ``steps`` steps that tells the transformer (and so tap) where it is."""
    scheduler = FlowMatchEulerDiscreteScheduler(shift=SHIFT)
    scheduler.set_timesteps(steps, device=model.device)
    latents = inputs["latents"]
    for i, t in enumerate(scheduler.timesteps):
        with model.cache_context("cond", step_index=i, num_inference_steps=steps):
            velocity = model(
                hidden_states=latents, encoder_hidden_states=inputs["encoder_hidden_states"],
                pooled_projections=inputs["pooled_projections"], timestep=(t / 1000).expand(1).to(latents.dtype),
                img_ids=inputs["img_ids"], txt_ids=inputs["txt_ids"], guidance=inputs["guidance"], return_dict=False,
            )[0]
        latents = scheduler.step(velocity, t, latents, return_dict=False)[0]
    return latents


def time_row(model: FluxTransformer2DModel, inputs: dict, steps: int, repeats: int, tapped: bool) -> dict:
    """One warm-up generation, then ``repeats`` timed ones; tap's statistics of the last when tap is on."""
    device = model.device
    generate(model, inputs, steps if tapped else min(steps, FULL_WARMUP_STEPS))
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        latents = generate(model, inputs, steps)
        synchronize(device)
        times.append(time.perf_counter() - start)
    row = dict(seconds=statistics.median(times), times=times, finite=bool(torch.isfinite(latents).all()))
    if tapped:
        stats = tap.stats(model)
        row.update(
            tap_steps=stats.steps, full_steps=stats.full_steps, predicted_steps=stats.predicted_steps,
            fallbacks=stats.fallbacks, left_alone=stats.left_alone, ideal=steps / stats.full_steps if stats.full_steps else None,
        )
    else:
        row.update(full_steps=steps)
    return row


def derive(rows: list[dict]) -> None:
    """Fill each tap row's speedup over the full compute of its mode and step count, and its share of the ideal."""
    full = {(r["mode"], r["steps"]): r["seconds"] for r in rows if r["method"] == "full"}
    for r in rows:
        base = full.get((r["mode"], r["steps"]))
        r["speedup"] = base / r["seconds"] if base is not None else None
        r["fraction_of_ideal"] = r["speedup"] / r["ideal"] if r["speedup"] is not None and r.get("ideal") else None


def fmt(value, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def tables(meta: dict, rows: list[dict]) -> str:
    lines = [
        f"Command: `{meta['command']}`",
        "",
        f"{meta['model']} with random weights, {meta['tokens']} image + {meta['text_tokens']} text tokens, batch 1, "
        f"{meta['dtype']}, {meta['device_name']}, torch {meta['torch']}, diffusers {meta['diffusers']}; median of "
        f"{meta['repeats']} timed generations after one warm-up"
        + (". Compiled: `compile_repeated_blocks(fullgraph=True)` (inductor)." if any(r["mode"] == "compiled" for r in rows) else "."),
        "",
        "| steps | mode | method | s / generation | speedup vs full (same mode) | full steps | ideal (N / full) | of ideal | fallbacks |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: r["steps"]):  # stable: each step count's rows in the order they ran
        tapped = r["method"] != "full"
        lines.append(
            f"| {r['steps']} | {r['mode']} | {r['label']} | {r['seconds']:.3f} | {fmt(r['speedup'], '.2f', 'x')} | {r['full_steps']} | "
            f"{fmt(r.get('ideal'), '.2f', 'x') if tapped else '-'} | {fmt(r['fraction_of_ideal'], '.0%') if tapped else '-'} | "
            f"{r.get('fallbacks', '-') if tapped else '-'} |"
        )
    target = [r for r in rows if r["mode"] == "compiled" and r["method"] == "tap" and r["fraction_of_ideal"] is not None]
    if target:
        lines += ["", "Target: compiled tap >= 0.9 x ideal over compiled full compute."]
        lines += [
            f"* {r['steps']} steps: {r['speedup']:.2f}x of {r['ideal']:.2f}x ideal = {r['fraction_of_ideal']:.2f} x ideal: "
            f"{'met' if r['fraction_of_ideal'] >= 0.9 else 'not met'}"
            for r in target
        ]
    # the check on and off in the same mode and, where measured, the same order of compiling and enabling
    off = {(r["mode"], r["steps"]): r for r in rows if r["method"] == "tap-no-finite-check"}
    on = {}
    for r in rows:
        key = (r["mode"], r["steps"])
        if r["method"] in ("tap", "tap-compile-first") and key in off and (key not in on or r.get("order") == off[key].get("order")):
            on[key] = r
    pairs = list(on)
    if pairs:
        lines += [
            "",
            "check_finite's cost (tap's default config with the check on and off):",
            "",
            "| steps | mode | order | check_finite=True (s) | check_finite=False (s) | cost |",
            "|---:|---|---|---:|---:|---:|",
        ]
        lines += [
            f"| {n} | {mode} | {on[mode, n].get('order', '-')} | {on[mode, n]['seconds']:.3f} | {off[mode, n]['seconds']:.3f} | "
            f"{on[mode, n]['seconds'] / off[mode, n]['seconds'] - 1:+.1%} |"
            for mode, n in pairs
        ]
    lines += [] if not any(r["mode"] == "compiled" for r in rows) else [
        "",
        "Compiled tap: tap enabled first, then compiled (docs/production.md's order); the rows marked compiled first: "
        "compiled first, then tap enabled. Either way tap compiles each block's body with the settings given.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="bfloat16", choices=sorted(DTYPES))
    parser.add_argument("--steps", type=int, nargs="+", default=[28, 50], help="step counts N of the Euler loop")
    parser.add_argument("--tokens", type=int, default=None, help="image tokens, a square (default 4096; 16 with --tiny)")
    parser.add_argument("--text-tokens", type=int, default=None, help=f"text tokens (default 512; {TINY_TEXT_TOKENS} with --tiny)")
    parser.add_argument("--tiny", action="store_true", help="a 3-block FLUX for a dry run on a CPU instead of FLUX.1-dev's architecture")
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled rows")
    parser.add_argument("--repeats", type=int, default=3, help="timed generations per row (the median is reported)")
    parser.add_argument("--out", default="docs/bench-h200/compiled", help="folder for compiled_speed.json and compiled_speed.md")
    args = parser.parse_args()
    tokens = args.tokens or (TINY_TOKENS if args.tiny else 4096)
    text_tokens = args.text_tokens or (TINY_TEXT_TOKENS if args.tiny else 512)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    meta = dict(
        command=" ".join(["python contrib/benchmarks/compiled_speed.py", *sys.argv[1:]]),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        model="tiny FLUX (1 double + 2 single blocks)" if args.tiny else "FLUX.1-dev's architecture (19 double + 38 single blocks)",
        config={k: list(v) if isinstance(v, tuple) else v for k, v in (TINY if args.tiny else FLUX_DEV).items()},
        tokens=tokens, text_tokens=text_tokens, dtype=args.dtype, device=str(device), repeats=args.repeats, compiled=not args.no_compile,
        device_name=torch.cuda.get_device_name(device) if device.type == "cuda"
        else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        torch=torch.__version__, diffusers=diffusers.__version__, tap=tap.__version__, python=platform.python_version(),
    )
    rows: list[dict] = []

    def write() -> None:
        derive(rows)
        (out / "compiled_speed.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=2) + "\n")
        (out / "compiled_speed.md").write_text(tables(meta, rows))

    # (mode, method, how the model got there); the model is compiled once, at the first compiled row, after tap.enable
    phases = [("eager", "full", None), ("eager", "tap", None), ("eager", "tap-no-finite-check", None)]
    if not args.no_compile:
        phases += [("compiled", "tap", "tap first, then compile"), ("compiled", "full", "compiled, tap disabled"),
                   ("compiled", "tap-no-finite-check", "compile first, then tap"), ("compiled", "tap-compile-first", "compile first, then tap")]
    labels = {"full": "full compute", "tap": "tap (TAPConfig())", "tap-no-finite-check": "tap (check_finite=False)",
              "tap-compile-first": "tap (TAPConfig()), compiled first"}
    configs = {"full": None, "tap": TAPConfig(), "tap-no-finite-check": TAPConfig(check_finite=False), "tap-compile-first": TAPConfig()}

    model = build(TINY if args.tiny else FLUX_DEV, args.device, dtype)
    inputs = make_inputs(model, tokens, text_tokens)
    compiled = False
    progress = tqdm(total=len(phases) * len(args.steps), desc="rows", unit="row")
    for mode, method, order in phases:
        config = configs[method]
        if config is not None:
            tap.enable(model, config)
        if mode == "compiled" and not compiled:
            model.compile_repeated_blocks(fullgraph=True)  # after tap.enable: docs/production.md's order
            compiled = True
        try:
            for steps in args.steps:
                progress.set_description(f"{mode} {method} N={steps}")
                row = time_row(model, inputs, steps, args.repeats, tapped=config is not None)
                rows.append(dict(mode=mode, method=method, label=labels[method], steps=steps, **row, **({"order": order} if order else {})))
                write()
                progress.update()
        finally:
            if config is not None:
                tap.disable(model)  # a compiled model stays compiled as asked
    progress.close()
    write()
    print(tables(meta, rows), end="")
    print(f"wrote {out / 'compiled_speed.json'} and {out / 'compiled_speed.md'}")


if __name__ == "__main__":
    main()
