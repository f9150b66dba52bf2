"""``tap generate``: one image or video with full compute and with tap, same seed, compared side by side."""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import tap
from tap.cli import launch
from tap.cli.metrics import as_frames, psnr, ssim
from tap.config import PRESETS, TAPConfig
from tap.runtime import build_schedule

DEMO_MODEL = "demo"
FPS = 16  # Wan's and HunyuanVideo's frame rate (pipelines do not report one)
OUT_SUFFIXES = (".png", ".gif", ".webp")  # pillow writes all three, animated for a video
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_pipeline(model: str, device: str, dtype: torch.dtype):
    """The bundled demo pipeline, or any diffusers pipeline by Hugging Face id or local path."""
    if model == DEMO_MODEL:
        from tap_plugins.demo import load_demo_pipeline

        return load_demo_pipeline(device=device, dtype=dtype)
    from diffusers import DiffusionPipeline

    try:
        pipe = DiffusionPipeline.from_pretrained(model, dtype=dtype)
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


FRAME_ARGUMENTS = ("num_frames", "frames")  # what video pipelines call their frame count (Sana-Video: frames)


def is_video(pipe) -> bool:
    """Whether the pipeline generates videos (its call takes a frame count)."""
    return bool(set(FRAME_ARGUMENTS) & set(inspect.signature(pipe.__call__).parameters))


def call_options(pipe, **options) -> dict:
    """The ``options`` given (not None) for the pipeline's call; a TAPError names those it does not take.
    ``num_frames`` goes under the pipeline's own name for the frame count."""
    given = {name: value for name, value in options.items() if value is not None}
    parameters = inspect.signature(pipe.__call__).parameters
    if "num_frames" in given and "num_frames" not in parameters and "frames" in parameters:
        given["frames"] = given.pop("num_frames")
    refused = sorted(set(given) - set(inspect.signature(pipe.__call__).parameters))
    if refused:
        raise tap.TAPError(f"{type(pipe).__name__} takes no {', '.join(refused)}: leave out the matching option(s)")
    return given


def check_sizes(**sizes) -> None:
    """Refuse a frame count or size below 1 (None: the pipeline's default)."""
    for name, value in sizes.items():
        if value is not None and value < 1:
            raise tap.ConfigError(f"--{name} must be >= 1, got {value}")


def check_schedule(config: TAPConfig, steps: int) -> None:
    """Plan ``steps`` steps with the config's schedule, so that one made for another step count (a listed
    schedule from ``tap tune``) fails now rather than after the model loaded."""
    build_schedule(config).planned_full_steps(steps)


def check_writable(path: Path) -> None:
    """Refuse, before any model loads, a file path that cannot be written (its folder is created)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            raise IsADirectoryError("it is a folder")
        if path.exists() and not os.access(path, os.W_OK):
            raise PermissionError("it is read-only")
        tempfile.TemporaryFile(dir=path.parent).close()
    except OSError as error:
        raise tap.TAPError(f"cannot write {str(path)!r}: {error}") from None


def output_path(out: str | None, video: bool) -> Path:
    """Where ``--out`` writes: its suffix (one of OUT_SUFFIXES) or, without one, .gif for a video and .png for an image."""
    path = Path(out or "tap-generate")
    if path.suffix.lower() not in ("", *OUT_SUFFIXES):
        raise tap.ConfigError(f"--out must end in {', '.join(OUT_SUFFIXES)} (animated for a video) or have no suffix, got {str(path)!r}")
    return path if path.suffix else path.with_suffix(".gif" if video else ".png")


def check_finite(frames: np.ndarray, what: str, hint: str) -> None:
    """A TAPError when a generation has NaN or inf values."""
    bad = ~np.isfinite(frames)
    if bad.any():
        raise tap.TAPError(f"the {what} output is not finite ({bad.mean():.1%} of its values are NaN or inf); nothing was saved. {hint}")


def run_pipeline(pipe, prompt: str, steps: int, seed: int, device: str, label: str, quiet: bool = False, **extra):
    """One generation as [frames, H, W, C] floats in [0, 1] (an image is one frame), and its wall-clock seconds."""
    pipe.set_progress_bar_config(desc=label, leave=False, disable=quiet)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    synchronize(device)
    start = time.perf_counter()
    output = pipe(prompt=prompt, num_inference_steps=steps, generator=generator, output_type="np", **extra)
    synchronize(device)
    seconds = time.perf_counter() - start
    return as_frames(output.frames[0] if hasattr(output, "frames") else output.images[0]), seconds


def to_pixels(frames: np.ndarray) -> np.ndarray:
    return (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)


def save_frames(frames, path: Path) -> None:
    """uint8 [H, W, C] frames to ``path``: one image, or an animation at FPS frames per second."""
    from PIL import Image

    images = [Image.fromarray(frame[..., 0] if frame.shape[-1] == 1 else frame) for frame in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=len(images) > 1, append_images=images[1:], duration=round(1000 / FPS), loop=0)


def save_comparison(full: np.ndarray, accelerated: np.ndarray, path: Path, title: str, quiet: bool = False) -> None:
    """Full compute, tap, and the absolute error as a heat map, side by side: an image, or for a video
    an animation of them frame by frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(9, 3.4), dpi=120)
    gray = full.shape[-1] == 1
    shown = lambda frame: frame[..., 0] if gray else frame  # noqa: E731
    panels = [axis.imshow(shown(media[0]), cmap="gray" if gray else None, vmin=0, vmax=1) for axis, media in zip(axes, (full, accelerated))]
    error = np.abs(full - accelerated).mean(axis=-1)
    heat = axes[2].imshow(error[0], cmap="inferno", vmin=0, vmax=max(float(error.max()), 1e-6))
    figure.colorbar(heat, ax=axes[2], fraction=0.046)
    for axis, name in zip(axes, ("full compute", "tap", "|error|")):
        axis.set_title(name)
        axis.axis("off")
    count = len(full)
    heading = figure.suptitle(title if count == 1 else f"{title}, frame {count}/{count}", fontsize=9)
    figure.tight_layout()
    pictures = []
    for index in tqdm(range(count), desc="saving frames", leave=False, disable=quiet or count == 1):
        panels[0].set_data(shown(full[index]))
        panels[1].set_data(shown(accelerated[index]))
        heat.set_data(error[index])
        if count > 1:
            heading.set_text(f"{title}, frame {index + 1}/{count}")
        figure.canvas.draw()
        pictures.append(np.asarray(figure.canvas.buffer_rgba())[..., :3].copy())
    plt.close(figure)
    save_frames(pictures, path)


def generate(args: argparse.Namespace) -> int:
    overrides = {"interval": args.interval} if args.interval is not None else {}
    if args.warmup is not None:
        overrides["warmup"] = args.warmup
    config = TAPConfig.preset(args.preset, **overrides)  # everything is validated before any model is loaded
    if args.steps < 1:
        raise tap.ConfigError(f"--steps must be >= 1, got {args.steps}")
    if args.context_parallel < 1:
        raise tap.ConfigError(f"--context-parallel must be >= 1 (ranks), got {args.context_parallel}")
    check_schedule(config, args.steps)
    check_sizes(frames=args.frames, height=args.height, width=args.width)
    check_writable(output_path(args.out, video=False))
    if args.context_parallel == 1:
        return generate_and_report(args, config)
    if launch.under_torchrun():
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        if world != args.context_parallel:
            raise tap.ConfigError(f"--context-parallel {args.context_parallel} under torchrun with {world} processes; give the same number")
        return generate_rank(rank, world, None, args, config)
    launch.spawn(generate_rank, args.context_parallel, args, config)
    return 0


def generate_rank(rank: int, world: int, port: int | None, args: argparse.Namespace, config: TAPConfig) -> int:
    """One rank of a context-parallel ``tap generate``: rank 0 reports, the others compute their tokens."""
    args.device = launch.init_rank(rank, world, args.device, port)
    try:
        return generate_and_report(args, config, world=world, report=rank == 0)
    finally:
        torch.distributed.destroy_process_group()


def generate_and_report(args: argparse.Namespace, config: TAPConfig, world: int = 1, report: bool = True) -> int:
    """Full compute and tap on the same seed, compared and saved (``report``: print and write the outputs)."""
    with torch.no_grad():
        pipe = load_pipeline(args.model, args.device, DTYPES[args.dtype])
        if world > 1:
            launch.split_tokens(pipe, world)
        extra = call_options(pipe, guidance_scale=args.guidance_scale, num_frames=args.frames, height=args.height, width=args.width)
        quiet = args.json or not report  # progress bars only where the summary is printed as text
        run = functools.partial(run_pipeline, pipe, args.prompt, seed=args.seed, device=args.device, quiet=quiet, **extra)
        run(2, label="warm-up")

        summary = {"model": args.model, "prompt": args.prompt, "steps": args.steps, "seed": args.seed,
                   "device": args.device, "dtype": args.dtype, "preset": args.preset, "interval": config.interval,
                   "full_step_rule": build_schedule(config).describe(args.steps)}
        full = None
        if not args.no_compare:
            full, summary["full_seconds"] = run(args.steps, label="full compute")
            check_finite(full, "full-compute", "The model itself fails here: try --dtype float32.")
        with tap.accelerate(pipe, config) as handle:
            accelerated, summary["tap_seconds"] = run(args.steps, label="tap")
            stats = handle.stats()
    check_finite(accelerated, "tap", "Try a smaller --interval or another --preset.")
    if not report:
        return 0
    summary.update(context_parallel=world, frames=len(accelerated), full_steps=stats.full_steps, predicted_steps=stats.predicted_steps,
                   blocks_avoided=round(stats.blocks_avoided, 4), cache_bytes=stats.cache_bytes, fallbacks=stats.fallbacks,
                   left_alone=stats.left_alone, restarts=stats.restarts)

    kind = "video" if len(accelerated) > 1 else "image"
    out = output_path(args.out, video=kind == "video")
    if full is not None:
        summary.update(speedup=summary["full_seconds"] / summary["tap_seconds"], psnr=psnr(full, accelerated), ssim=ssim(full, accelerated))
        title = f"{args.prompt!r}: {summary['speedup']:.2f}x, PSNR {summary['psnr']:.2f} dB, SSIM {summary['ssim']:.4f}"
        save_comparison(full, accelerated, out, title, quiet=args.json)
    else:
        save_frames(to_pixels(accelerated), out)
    summary[kind] = str(out)

    print(json.dumps(summary, indent=2) if args.json else summary_text(summary, kind), file=sys.stdout)
    return 0


def summary_text(summary: dict, kind: str) -> str:
    """The readable report of ``tap generate``: timings, quality, the full steps' rule, and what else happened."""
    lines = [f"tap:          {summary['tap_seconds']:.2f} s ({summary['full_steps']} full + {summary['predicted_steps']} predicted steps, "
             f"{100 * summary['blocks_avoided']:.0f}% of block evaluations avoided)"]
    if "full_seconds" in summary:
        lines = [f"full compute: {summary['full_seconds']:.2f} s", *lines,
                 f"speedup:      {summary['speedup']:.2f}x", f"PSNR:         {summary['psnr']:.2f} dB",
                 f"SSIM:         {summary['ssim']:.4f}"]
    lines.append(f"full steps:   {summary['full_step_rule']}")
    if summary["left_alone"] is not None:
        lines.append(f"left alone:   {summary['left_alone']}")
    if summary["context_parallel"] > 1:
        lines.append(f"ranks:        {summary['context_parallel']} (context parallelism)")
    if summary["fallbacks"]:
        lines.append(f"fallbacks:    {summary['fallbacks']} predicted steps computed in full (not finite)")
    if summary["restarts"]:
        lines.append(f"restarts:     {summary['restarts']} (the latents left their trajectory)")
    return "\n".join([*lines, f"{kind + ':':<13} {summary[kind]}"])


def add_video_options(parser) -> None:
    """--frames, --height and --width, passed only when given (the pipeline's defaults otherwise)."""
    parser.add_argument("--frames", type=int, default=None, help="frames of a video (video pipelines; the pipeline's default if omitted)")
    parser.add_argument("--height", type=int, default=None, help="pixels (the pipeline's default if omitted)")
    parser.add_argument("--width", type=int, default=None, help="pixels (the pipeline's default if omitted)")


def add_generate_command(commands) -> None:
    parser = commands.add_parser("generate", help="generate with full compute and with tap, and compare")
    parser.add_argument("--model", default=DEMO_MODEL, help="'demo' (bundled), a Hugging Face id or a local pipeline folder")
    parser.add_argument("--prompt", default="A")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--interval", type=int, default=None,
                        help="a full step every N steps (if omitted, the preset's rule: by default at least 9 full steps per run)")
    parser.add_argument("--warmup", type=int, default=None, help="full steps at the start (preset's value if omitted)")
    parser.add_argument("--preset", default="default", help=f"one of {', '.join(sorted(PRESETS))}, or a preset file from tap tune")
    parser.add_argument("--guidance-scale", type=float, default=None, help="the pipeline's default if omitted")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    parser.add_argument("--out", default=None, help="comparison to write: tap-generate.png for an image, tap-generate.gif (animated) for a video")
    add_video_options(parser)
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    parser.add_argument("--no-compare", action="store_true", help="run tap only (no full-compute reference)")
    parser.add_argument("--context-parallel", type=int, default=1, metavar="N",
                        help="split the tokens over N processes (diffusers' Ulysses context parallelism); spawned here, or give "
                             "the same N under torchrun --nproc-per-node N")
    parser.set_defaults(run=generate)
