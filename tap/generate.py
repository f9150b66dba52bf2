"""``tap generate``: one image with full compute and with tap, same seed, compared side by side."""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

import tap
from tap.config import PRESETS, TAPConfig
from tap.metrics import psnr, ssim

DEMO_MODEL = "demo"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_pipeline(model: str, device: str, dtype: torch.dtype):
    """The bundled demo pipeline, or any diffusers pipeline by Hugging Face id or local path."""
    if model == DEMO_MODEL:
        from tap_plugins.demo import load_demo_pipeline

        return load_demo_pipeline(device=device, dtype=dtype)
    from diffusers import DiffusionPipeline

    try:
        pipe = DiffusionPipeline.from_pretrained(model, torch_dtype=dtype)
    except (OSError, ValueError) as error:
        raise tap.TAPError(
            f"could not load pipeline {model!r}: {error}\n"
            "Give a local folder with a diffusers pipeline (model_index.json) or a Hugging Face id "
            "whose weights are downloadable or already in the Hugging Face cache."
        ) from None
    return pipe.to(device)


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_pipeline(pipe, prompt: str, steps: int, seed: int, device: str, label: str, quiet: bool = False, **extra):
    """One generation as an [H, W, C] float array in [0, 1], and its wall-clock seconds."""
    pipe.set_progress_bar_config(desc=label, leave=False, disable=quiet)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    synchronize(device)
    start = time.perf_counter()
    images = pipe(prompt=prompt, num_inference_steps=steps, generator=generator, output_type="np", **extra).images
    synchronize(device)
    return np.asarray(images[0], dtype=np.float64), time.perf_counter() - start


def save_comparison(full: np.ndarray, accelerated: np.ndarray, path: Path, title: str) -> None:
    """One PNG: full compute, tap, and the absolute error as a heat map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(9, 3.4))
    gray = full.shape[-1] == 1
    for axis, image, name in ((axes[0], full, "full compute"), (axes[1], accelerated, "tap")):
        axis.imshow(image[..., 0] if gray else image, cmap="gray" if gray else None, vmin=0, vmax=1)
        axis.set_title(name)
    error = np.abs(full - accelerated).mean(axis=-1)
    shown = axes[2].imshow(error, cmap="inferno", vmin=0, vmax=max(float(error.max()), 1e-6))
    axes[2].set_title("|error|")
    figure.colorbar(shown, ax=axes[2], fraction=0.046)
    for axis in axes:
        axis.axis("off")
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def save_single(image: np.ndarray, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(path)


def generate(args: argparse.Namespace) -> int:
    overrides = {"interval": args.interval} if args.interval is not None else {}
    if args.warmup is not None:
        overrides["warmup"] = args.warmup
    config = TAPConfig.preset(args.preset, **overrides)  # validated before any model is loaded
    if args.steps < 1:
        raise tap.ConfigError(f"--steps must be >= 1, got {args.steps}")
    extra = {} if args.guidance_scale is None else {"guidance_scale": args.guidance_scale}
    torch.set_grad_enabled(False)
    pipe = load_pipeline(args.model, args.device, DTYPES[args.dtype])
    run = functools.partial(run_pipeline, pipe, args.prompt, seed=args.seed, device=args.device, quiet=args.json, **extra)
    run(2, label="warm-up")

    summary = {"model": args.model, "prompt": args.prompt, "steps": args.steps, "seed": args.seed,
               "device": args.device, "dtype": args.dtype, "preset": args.preset, "interval": config.interval}
    full = None
    if not args.no_compare:
        full, summary["full_seconds"] = run(args.steps, label="full compute")
    with tap.accelerate(pipe, config) as handle:
        accelerated, summary["tap_seconds"] = run(args.steps, label="tap")
        stats = handle.stats()
    summary.update(full_steps=stats.full_steps, predicted_steps=stats.predicted_steps,
                   blocks_avoided=round(stats.blocks_avoided, 4), cache_bytes=stats.cache_bytes)

    out = Path(args.out)
    if full is not None:
        summary.update(speedup=summary["full_seconds"] / summary["tap_seconds"], psnr=psnr(full, accelerated), ssim=ssim(full, accelerated))
        title = f"{args.prompt!r}: {summary['speedup']:.2f}x, PSNR {summary['psnr']:.2f} dB, SSIM {summary['ssim']:.4f}"
        save_comparison(full, accelerated, out, title)
    else:
        save_single(accelerated, out)
    summary["image"] = str(out)

    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        lines = [f"tap:          {summary['tap_seconds']:.2f} s ({stats.full_steps} full + {stats.predicted_steps} predicted steps, "
                 f"{100 * stats.blocks_avoided:.0f}% of block evaluations avoided)"]
        if full is not None:
            lines = [f"full compute: {summary['full_seconds']:.2f} s", *lines,
                     f"speedup:      {summary['speedup']:.2f}x", f"PSNR:         {summary['psnr']:.2f} dB",
                     f"SSIM:         {summary['ssim']:.4f}"]
        print("\n".join([*lines, f"image:        {out}"]), file=sys.stdout)
    return 0


def add_generate_command(commands) -> None:
    parser = commands.add_parser("generate", help="generate with full compute and with tap, and compare")
    parser.add_argument("--model", default=DEMO_MODEL, help="'demo' (bundled), a Hugging Face id or a local pipeline folder")
    parser.add_argument("--prompt", default="A")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--interval", type=int, default=None, help="full step every N steps (preset's value if omitted)")
    parser.add_argument("--warmup", type=int, default=None, help="full steps at the start (preset's value if omitted)")
    parser.add_argument("--preset", default="default", help=f"one of {', '.join(sorted(PRESETS))}, or a preset file from tap tune")
    parser.add_argument("--guidance-scale", type=float, default=None, help="the pipeline's default if omitted")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    parser.add_argument("--out", default="tap-generate.png", help="PNG to write")
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    parser.add_argument("--no-compare", action="store_true", help="run tap only (no full-compute reference)")
    parser.set_defaults(run=generate)
