"""How tap's wall-clock speedup, and the share of it that per-token selection costs, scale with model size.

    python contrib/benchmarks/overhead.py                                   # CPU: widths 128 and 512
    python contrib/benchmarks/overhead.py --device cuda --dtype bfloat16 --sizes flux-dev --tokens 1024 4096

Random-weight FLUX transformers sample 50 Euler steps; tap runs at interval 6 (9 full steps) with
the order-1 forecast alone (no probe), the same without the check that predictions are finite
(its cost: one host sync per predicted step), and with per-token selection between orders 1 and 2 (the
probe and the selection run on every predicted step). Only wall-clock is measured: the weights
are random, so quality means nothing here. ``flux-dev`` is FLUX.1-dev's architecture (19 double
+ 38 single blocks, width 3072); it needs a GPU. Writes a Markdown table (``--out``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from diffusers import FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel

import tap
from tap.cli.generate import DTYPES, synchronize

STEPS, INTERVAL, TEXT = 50, 6, 64
SIZES = {  # name: (double blocks, single blocks, heads, head dim, text dim, pooled dim, latent channels)
    "width-128": (2, 6, 2, 64, 64, 32, 16),
    "width-512": (2, 6, 8, 64, 64, 32, 16),
    "flux-dev": (19, 38, 24, 128, 4096, 768, 64),
}
CONFIGS = {
    "order-1 forecast": dict(orders=(1,), selector="fixed"),
    "order-1, no finite check": dict(orders=(1,), selector="fixed", check_finite=False),
    "per-token 1-2": dict(orders=(1, 2)),
}


def build(size: str, device: str, dtype: torch.dtype) -> FluxTransformer2DModel:
    double, single, heads, head_dim, text_dim, pooled_dim, channels = SIZES[size]
    torch.manual_seed(0)
    rope = (head_dim // 8, 7 * head_dim // 16, 7 * head_dim // 16)
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # initialise in the run's dtype, where it runs: a FLUX.1-dev-sized
    try:  # float32 init on a CPU takes minutes
        with torch.device(device):
            model = FluxTransformer2DModel(
                patch_size=1, in_channels=channels, num_layers=double, num_single_layers=single, attention_head_dim=head_dim,
                num_attention_heads=heads, joint_attention_dim=text_dim, pooled_projection_dim=pooled_dim, axes_dims_rope=rope,
            )
    finally:
        torch.set_default_dtype(default_dtype)
    return model.eval()


@torch.inference_mode()
def generate(model: FluxTransformer2DModel, tokens: int) -> None:
    config, device, dtype = model.config, model.device, model.dtype
    side = int(tokens**0.5)
    generator = torch.Generator().manual_seed(0)
    ids = torch.zeros(side, side, 3)
    ids[..., 1], ids[..., 2] = torch.arange(side)[:, None], torch.arange(side)[None, :]
    latents = torch.randn(1, side * side, config.in_channels, generator=generator).to(device, dtype)
    text = torch.randn(1, TEXT, config.joint_attention_dim, generator=generator).to(device, dtype)
    pooled = torch.randn(1, config.pooled_projection_dim, generator=generator).to(device, dtype)
    img_ids, txt_ids = ids.reshape(-1, 3).to(device), torch.zeros(TEXT, 3, device=device)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    scheduler.set_timesteps(STEPS)
    for t in scheduler.timesteps:
        timestep = (t / 1000).expand(1).to(device, dtype)
        output = model(hidden_states=latents, encoder_hidden_states=text, pooled_projections=pooled, timestep=timestep,
                       img_ids=img_ids, txt_ids=txt_ids, return_dict=False)[0]
        latents = scheduler.step(output, t, latents, return_dict=False)[0]


def seconds(model: FluxTransformer2DModel, tokens: int, config: dict | None, repeats: int) -> float:
    """Median wall-clock of ``repeats`` generations, after one untimed."""
    handle = tap.enable(model, interval=INTERVAL, **config) if config is not None else None
    device = str(model.device)
    try:
        times = []
        for _ in range(repeats + 1):
            synchronize(device)
            start = time.perf_counter()
            generate(model, tokens)
            synchronize(device)
            times.append(time.perf_counter() - start)
    finally:
        if handle is not None:
            tap.disable(model)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    parser.add_argument("--sizes", nargs="+", default=["width-128", "width-512"], choices=sorted(SIZES))
    parser.add_argument("--tokens", nargs="+", type=int, default=[1024], help="image tokens (square grids)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (1: steadier timings on a shared machine)")
    parser.add_argument("--out", default="docs/research-data/overhead.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ideal = STEPS / len(range(0, STEPS, INTERVAL))
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {args.threads} thread(s)"
    lines = [
        f"Command: `{' '.join(['python contrib/benchmarks/overhead.py', *sys.argv[1:]])}`",
        "",
        f"Random-weight FLUX transformers, {TEXT} text tokens, {STEPS} steps, interval {INTERVAL} (ideal step ratio "
        f"{ideal:.2f}x), {device_name}, {args.dtype}, median of {args.repeats}.",
        "",
        "| size | image tokens | full compute (s) | " + " | ".join(f"{name}: speedup" for name in CONFIGS) + " | finite check's cost | selection's cost |",
        "|---|---:|---:|" + "---:|" * len(CONFIGS) + "---:|---:|",
    ]
    for size in args.sizes:
        model = build(size, args.device, DTYPES[args.dtype])
        for tokens in args.tokens:
            full = seconds(model, tokens, None, args.repeats)
            speedup = {name: full / seconds(model, tokens, config, args.repeats) for name, config in CONFIGS.items()}
            check_cost = 1 - speedup["order-1 forecast"] / speedup["order-1, no finite check"]
            selection_cost = 1 - speedup["per-token 1-2"] / speedup["order-1 forecast"]
            cells = " | ".join(f"{s:.2f}x ({s / ideal:.0%} of ideal)" for s in speedup.values())
            lines.append(f"| {size} | {tokens} | {full:.2f} | {cells} | {check_cost:.1%} | {selection_cost:.1%} |")
            print(lines[-1], flush=True)
        del model
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
