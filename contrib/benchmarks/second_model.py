"""Does tap's default win on a second architecture? A tiny Qwen-Image transformer, random and trained (CPU).

    python contrib/benchmarks/second_model.py

Builds a ``QwenImageTransformer2DModel`` from diffusers with seeded **random weights** (no
training): 6 dual-stream blocks, 4 heads x 32 dims, 256 image tokens (a 16 x 16 grid of packed
latents, 16 channels = 4 latent channels x 2 x 2, like the real model's packing), 16 text tokens
of seeded random embeddings, float32, in two initialisations:

- ``diffusers-init``: diffusers' own init, unchanged. It leaves no projection zero (only the
  RMSNorm weights sit at their constant 1.0), so nothing had to be re-initialised to get a
  non-zero output. But its random timestep MLP mixes all 256 sinusoid channels, up to one radian
  per unit of t (t runs 0..1000), so the time conditioning, and with it the block stack's residual,
  jumps by about half its norm from one step to the next, as noise in t; and its modulation gates
  are about 0.06, so the stack's residual is only about 6% of the stack's input.
- ``smooth-t``: the same model with the time conditioning re-initialised (seeded generator,
  seed 1) so that it varies smoothly over the trajectory and the blocks matter, as in trained
  models: ``time_text_embed.timestep_embedder.linear_1`` gets a LeCun-normal init (std
  1/sqrt(fan-in)) on the sinusoid channels with at most one period over t in [0, 1000] and zero
  on the faster ones, ``linear_2`` and every block's ``img_mod`` / ``txt_mod`` linear a
  LeCun-normal init with zero bias, and the four gate biases of each block +1 (the attention and
  MLP branches pass at full strength). All other weights are diffusers' init, identical to
  ``diffusers-init``.

The script measures and prints, per model, how large the stack's residual is against its input
and how fast it changes, and stops if the model output is constant.

A third variant, ``trained-glyphs``, runs when ``contrib/second-model/weights/`` exists: the same
architecture **trained** by ``contrib/second-model/train.py`` as a pixel-space glyph generator (64x64x1
images packed into the same 256 x 16 tokens with ``pack_pixels``; 16 text tokens of dim 64 from a learned
per-glyph embedding). It samples the glyphs A, g, 7 and R, each from seed 0's noise, with classifier-free
guidance 4.0 (null and glyph prompt in one batch of 2, one model call per step), and writes the
full-compute samples (and tap's default at the largest interval) to docs/research-data/second-model-samples.png.

The random variants sample 4 seeds (0-3) with ``FlowMatchEulerDiscreteScheduler(shift=3.0)``, 50 steps, no CFG, and
compares at intervals 4-8 (one warm-up step) tap's default (the order-1 Taylor forecast, no
selection) with per-token selection between orders 1 and 2 (preset ``token``), TaylorSeer order 2,
fixed Taylor order 2, FORA reuse, per-token TaylorSeer 1-2, one global choice, and the paper's rule. Quality: PSNR of each final latent against full
compute of the same seed, data range = max - min of the full-compute latent, averaged over the
samples. Speed: wall-clock of the 4 samples, median of 2 runs, vs full compute (1 thread).
Interval 1 must reproduce full compute bit for bit (asserted).
Writes docs/research-data/second-model.md and second-model.json.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch
from diffusers import FlowMatchEulerDiscreteScheduler, QwenImageTransformer2DModel

import tap
from tap import TAPConfig
from tap_plugins.demo.pipeline import CHARACTERS, unpack_pixels

COMMAND = "python contrib/benchmarks/second_model.py"
ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "research-data"

MODEL_SEED, SEEDS, STEPS, SHIFT = 0, (0, 1, 2, 3), 50, 3.0
GRID, CHANNELS, TEXT_TOKENS, TEXT_DIM = 16, 16, 16, 64
INTERVALS = (4, 5, 6, 7, 8)
RUNS = 2  # timing: median of this many runs
WEIGHTS = ROOT / "contrib" / "second-model" / "weights"  # written by contrib/second-model/train.py
GLYPHS, EXTRA_GLYPHS, GLYPH_SEED, GUIDANCE = ("A", "g", "7", "R"), ("B", "e", "3", "Q"), 0, 4.0
SAMPLES_PNG = OUT / "second-model-samples.png"

CONFIGS = {
    "default: fixed taylor 1 (TAPConfig())": lambda n: TAPConfig(interval=n),
    "per-token taylor 1-2, cosine (preset token)": lambda n: TAPConfig.preset("token", interval=n),
    "fixed taylorseer 2 (preset taylorseer)": lambda n: TAPConfig.preset("taylorseer", interval=n),
    "fixed taylor 2": lambda n: TAPConfig(interval=n, orders=(2,), selector="fixed"),
    "fixed reuse (preset fora)": lambda n: TAPConfig.preset("fora", interval=n),
    "per-token taylorseer 1-2, cosine": lambda n: TAPConfig(interval=n, predictor="taylorseer", orders=(1, 2)),
    "per-token taylorseer 1-2, l2": lambda n: TAPConfig(interval=n, predictor="taylorseer", orders=(1, 2), distance="l2"),
    "global taylor 1-2 (preset global)": lambda n: TAPConfig.preset("global", interval=n),
    "paper: taylor 0-2 x k-4..k, cosine, token (preset paper)": lambda n: TAPConfig.preset("paper", interval=n),
}
DEFAULT = next(iter(CONFIGS))


def build_model(init: str = "diffusers-init") -> QwenImageTransformer2DModel:
    torch.manual_seed(MODEL_SEED)
    model = QwenImageTransformer2DModel(
        patch_size=2, in_channels=CHANNELS, out_channels=CHANNELS // 4, num_layers=6, attention_head_dim=32,
        num_attention_heads=4, joint_attention_dim=TEXT_DIM, axes_dims_rope=(8, 12, 12),
    )
    generator = torch.Generator().manual_seed(MODEL_SEED + 1)
    zero = [name for name, p in model.named_parameters() if p.numel() > 1 and float(p.abs().max()) == 0.0]
    with torch.no_grad():
        for name, p in model.named_parameters():  # none with diffusers 0.42's init; guards a future zero-init
            if name in zero:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.02)
        if init == "smooth-t":
            smooth_time_conditioning(model, generator)
    model.reinitialised = zero + (SMOOTH_T_PARAMETERS if init == "smooth-t" else [])
    model.samples = SEEDS
    return model.eval()


def load_trained() -> QwenImageTransformer2DModel:
    """``trained-glyphs``: the transformer and label embedding written by ``contrib/second-model/train.py``."""
    from safetensors.torch import load_file

    model = QwenImageTransformer2DModel.from_pretrained(WEIGHTS / "transformer", torch_dtype=torch.float32)
    model.glyph_tokens = load_file(str(WEIGHTS / "embedding.safetensors"))["weight"].float()  # plain tensor attribute
    model.training_info = json.loads((WEIGHTS / "training.json").read_text())
    model.reinitialised = []
    model.samples = GLYPHS
    return model.eval()


SMOOTH_T_PARAMETERS = [
    "time_text_embed.timestep_embedder.linear_1 (slow sinusoid channels only)",
    "time_text_embed.timestep_embedder.linear_2",
    "transformer_blocks.*.img_mod.1 and txt_mod.1 (gate biases +1)",
]


def lecun(linear: torch.nn.Linear, generator: torch.Generator, channels: torch.Tensor | None = None) -> None:
    """LeCun-normal weight (std 1/sqrt(fan-in), over the kept input ``channels`` only), zero bias."""
    fan_in = linear.in_features if channels is None else int(channels.sum())
    weight = torch.randn(linear.weight.shape, generator=generator) / math.sqrt(fan_in)
    linear.weight.copy_(weight if channels is None else weight * channels)
    linear.bias.zero_()


def smooth_time_conditioning(model: QwenImageTransformer2DModel, generator: torch.Generator) -> None:
    """``smooth-t``: time conditioning that varies smoothly over t and blocks at full strength (see the docstring)."""
    embedder = model.time_text_embed.timestep_embedder
    half = model.time_text_embed.time_proj.num_channels // 2
    frequencies = torch.exp(-math.log(10000) * torch.arange(half) / half)  # radians per unit of t (t in 0..1000)
    slow = (frequencies * 1000 <= 2 * math.pi).float()  # at most one period over the whole trajectory
    lecun(embedder.linear_1, generator, torch.cat([slow, slow]))  # [cos | sin] halves
    lecun(embedder.linear_2, generator)
    dim = model.inner_dim
    for block in model.transformer_blocks:
        for modulation in (block.img_mod[1], block.txt_mod[1]):
            lecun(modulation, generator)
            modulation.bias[2 * dim:3 * dim] += 1.0  # gate of the attention branch
            modulation.bias[5 * dim:6 * dim] += 1.0  # gate of the MLP branch


def inputs(seed: int) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {
        "latents": torch.randn(1, GRID * GRID, CHANNELS, generator=generator),
        "encoder_hidden_states": torch.randn(1, TEXT_TOKENS, TEXT_DIM, generator=generator),
        "encoder_hidden_states_mask": torch.ones(1, TEXT_TOKENS),
    }


def glyph_inputs(model, glyph: str) -> dict:
    """``trained-glyphs``: seed GLYPH_SEED's noise and the [null, glyph] text tokens (CFG in one batch of 2)."""
    generator = torch.Generator().manual_seed(GLYPH_SEED)
    ids = torch.tensor([len(CHARACTERS), CHARACTERS.index(glyph)])
    return {
        "latents": torch.randn(1, GRID * GRID, CHANNELS, generator=generator),
        "encoder_hidden_states": model.glyph_tokens[ids].reshape(2, TEXT_TOKENS, TEXT_DIM),
        "encoder_hidden_states_mask": torch.ones(2, TEXT_TOKENS),
    }


def sample_loop(model, seed, outputs: list | None = None) -> torch.Tensor:
    """Euler flow matching from seed's latents (a glyph's, for the trained model, with CFG); the final latent
    (and each step's output, if asked)."""
    if getattr(model, "glyph_tokens", None) is not None:
        return glyph_sample_loop(model, seed, outputs)
    cond = inputs(seed)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=SHIFT)
    scheduler.set_timesteps(STEPS)
    latents = cond["latents"]
    for t in scheduler.timesteps:
        output = model(
            hidden_states=latents, encoder_hidden_states=cond["encoder_hidden_states"],
            encoder_hidden_states_mask=cond["encoder_hidden_states_mask"], timestep=(t / 1000).expand(1),
            img_shapes=[(1, GRID, GRID)], return_dict=False,
        )[0]
        if outputs is not None:
            outputs.append(output)
        latents = scheduler.step(output, t, latents, return_dict=False)[0]
    return latents


def glyph_sample_loop(model, glyph: str, outputs: list | None = None, steps: int = STEPS, shift: float = SHIFT) -> torch.Tensor:
    """``trained-glyphs``: as ``sample_loop``, with classifier-free guidance GUIDANCE (uncond, cond in one batch)."""
    cond = glyph_inputs(model, glyph)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=shift)
    scheduler.set_timesteps(steps)
    latents = cond["latents"]
    for index, t in enumerate(scheduler.timesteps):
        with model.cache_context("cfg", step_index=index, num_inference_steps=steps):  # where the loop is, for tap's clock
            velocity = model(
                hidden_states=torch.cat([latents, latents]), encoder_hidden_states=cond["encoder_hidden_states"],
                encoder_hidden_states_mask=cond["encoder_hidden_states_mask"], timestep=(t / 1000).expand(2),
                img_shapes=[(1, GRID, GRID)] * 2, return_dict=False,
            )[0]
        uncond, conditional = velocity.chunk(2)
        output = uncond + GUIDANCE * (conditional - uncond)
        if outputs is not None:
            outputs.append(output)
        latents = scheduler.step(output, t, latents, return_dict=False)[0]
    return latents


def save_samples(rows: list[tuple[str, list[str], list[torch.Tensor]]]) -> None:
    """A grid of decoded glyph samples (unpack_pixels; black ink on white), one labelled row per entry."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = max(len(images) for _, _, images in rows)
    fig, axes = plt.subplots(len(rows), columns, figsize=(1.6 * columns, 1.8 * len(rows)), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for r, (title, labels, images) in enumerate(rows):
        for c, (label, latent) in enumerate(zip(labels, images)):
            image = (unpack_pixels(latent.float())[0, 0] / 2 + 0.5).clamp(0, 1)
            axes[r, c].imshow(image.numpy(), cmap="gray", vmin=0, vmax=1)
            axes[r, c].set_title(f"{label!r}" + (f"  {title}" if c == 0 else ""), fontsize=8, loc="left")
    fig.suptitle("trained-glyphs (contrib/second-model): 50 steps, CFG 4.0, seed 0", fontsize=9)
    fig.tight_layout()
    SAMPLES_PNG.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(SAMPLES_PNG, dpi=100)
    plt.close(fig)


def run_all(model, config: TAPConfig | None) -> tuple[list[torch.Tensor], float, list[int]]:
    """Every seed once, with tap (``config``) or without; final latents, seconds, full steps per seed."""
    handle = tap.enable(model, config) if config is not None else None
    try:
        finals, full_steps = [], []
        start = time.perf_counter()
        for seed in model.samples:
            if handle is not None:
                handle.reset()
            finals.append(sample_loop(model, seed))
            if handle is not None:
                stats = tap.stats(model)
                assert stats.steps == STEPS, stats
                full_steps.append(stats.full_steps)
        seconds = time.perf_counter() - start
    finally:
        if handle is not None:
            tap.disable(model)
    return finals, seconds, full_steps


def timed(model, config: TAPConfig | None):
    runs = [run_all(model, config) for _ in range(RUNS)]
    for finals, _, _ in runs[1:]:
        assert all(torch.equal(a, b) for a, b in zip(finals, runs[0][0])), "runs differ"
    return runs[0][0], statistics.median(r[1] for r in runs), runs[0][2]


def psnr(x: torch.Tensor, reference: torch.Tensor) -> float:
    mse = float((x.double() - reference.double()).pow(2).mean())
    value_range = float(reference.max() - reference.min())
    return math.inf if mse == 0 else 10 * math.log10(value_range**2 / mse)


def trajectory_check(model) -> dict:
    """The first sample (seed 0) at full compute: how large the block stack's residual is and how it moves over the steps."""
    blocks, seen, residuals, inputs_ = model.transformer_blocks, {}, [], []

    def first(module, args, kwargs):
        seen["in"] = kwargs["hidden_states"]

    def last(module, args, kwargs, output):
        residuals.append(output[1] - seen["in"])
        inputs_.append(seen["in"])

    hooks = [blocks[0].register_forward_pre_hook(first, with_kwargs=True),
             blocks[-1].register_forward_hook(last, with_kwargs=True)]
    outputs: list[torch.Tensor] = []
    try:
        sample_loop(model, model.samples[0], outputs)
    finally:
        for hook in hooks:
            hook.remove()

    def relative(a, b):
        return float((b - a).norm() / a.norm())

    info = {
        "residual_over_input": statistics.median(float(r.norm() / x.norm()) for r, x in zip(residuals, inputs_)),
        "residual_change_per_step": statistics.median(relative(a, b) for a, b in itertools.pairwise(residuals)),
        "residual_second_difference": statistics.median(
            float((c - 2 * b + a).norm() / b.norm()) for a, b, c in zip(residuals, residuals[1:], residuals[2:])
        ),
        "residual_change_first_to_last": relative(residuals[0], residuals[-1]),
        "output_std_first_step": float(outputs[0].std()),
        "output_change_first_to_last": relative(outputs[0], outputs[-1]),
    }
    if info["output_std_first_step"] < 1e-3 or info["output_change_first_to_last"] < 1e-3:
        sys.exit(f"the random model is trivial: {info}")
    return info


def fmt(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.2f}"


def measure(init: str) -> dict:
    model = load_trained() if init == "trained-glyphs" else build_model(init)
    trajectory = trajectory_check(model)
    reference, full_seconds, _ = timed(model, None)
    exact, _, exact_full = run_all(model, TAPConfig(interval=1))
    assert all(torch.equal(a, b) for a, b in zip(exact, reference)), "interval 1 differs from full compute"
    assert exact_full == [STEPS] * len(model.samples), exact_full
    rows, default_finals = [], None
    for name, make in CONFIGS.items():
        for n in INTERVALS:
            finals, seconds, full_steps = timed(model, make(n))
            scores = [psnr(x, ref) for x, ref in zip(finals, reference)]
            if name == DEFAULT and n == INTERVALS[-1]:
                default_finals = finals
            rows.append({
                "configuration": name, "interval": n, "config": make(n).to_dict(),
                "full_steps": statistics.mean(full_steps), "psnr": statistics.mean(scores), "psnr_per_seed": scores,
                "seconds": seconds, "speedup": full_seconds / seconds,
            })
            print(f"{init:15s} {name:58s} n={n} full={rows[-1]['full_steps']:.0f} psnr={rows[-1]['psnr']:.2f} "
                  f"speedup={rows[-1]['speedup']:.2f}x", flush=True)
    by = {(r["configuration"], r["interval"]): r for r in rows}
    best = {n: max(by[c, n]["psnr"] for c in CONFIGS) for n in INTERVALS}
    if init == "trained-glyphs":
        extra = [sample_loop(model, glyph) for glyph in EXTRA_GLYPHS]
        save_samples([
            ("full compute", list(GLYPHS), reference),
            (f"tap default n={INTERVALS[-1]}", list(GLYPHS), default_finals),
            ("full compute", list(EXTRA_GLYPHS), extra),
        ])
    return {
        "init": init, "samples": list(model.samples), "training": getattr(model, "training_info", None),
        "reinitialised": model.reinitialised, "config": dict(model.config), "trajectory": trajectory,
        "full_seconds": full_seconds, "interval_1_exact": True, "rows": rows,
        "default_minus_best_db": {n: by[DEFAULT, n]["psnr"] - best[n] for n in INTERVALS},
    }


def table(result: dict) -> list[str]:
    by = {(r["configuration"], r["interval"]): r for r in result["rows"]}
    best = {n: max(by[c, n]["psnr"] for c in CONFIGS) for n in INTERVALS}
    full_of = {n: sorted({by[c, n]["full_steps"] for c in CONFIGS}) for n in INTERVALS}
    t = result["trajectory"]

    def header(n):
        return f"n={n} ({full_of[n][0]:g} full)" if len(full_of[n]) == 1 else f"n={n}"

    if result["training"] is not None:
        info = result["training"]
        what = (f"Trained weights: `contrib/second-model/weights/` ({info['steps']} steps in {info['minutes']:.1f} min, "
                f"final training loss {info['final_loss_mean_last_200']:.4f}; stored float16, run in float32). Samples: "
                f"glyphs {', '.join(result['samples'])}, each from seed {GLYPH_SEED}'s noise, CFG {GUIDANCE} (null and "
                "glyph prompt in one batch of 2); the full-compute samples are in `second-model-samples.png`.")
    else:
        what = "Re-initialised: " + ("; ".join(result["reinitialised"]) or "nothing (diffusers' init as is)") + "."
    lines = [
        f"### `{result['init']}`",
        "",
        what,
        (f"Full compute of the {len(result['samples'])} samples: {result['full_seconds']:.2f} s. Stack residual (first sample, median over "
        f"steps): {t['residual_over_input']:.3f} of the stack's input in norm, changing {t['residual_change_per_step']:.3f} "
        f"per step (second difference {t['residual_second_difference']:.4f}), {t['residual_change_first_to_last']:.2f} "
        f"from the first to the last step; model output changes {t['output_change_first_to_last']:.2f} first to last."),
        "",
        "| configuration | " + " | ".join(header(n) for n in INTERVALS) + " | "
        + " | ".join(f"speedup n={n}" for n in INTERVALS) + " |",
        "|---|" + "---:|" * (2 * len(INTERVALS)),
    ]
    for name in CONFIGS:
        cells = []
        for n in INTERVALS:
            r = by[name, n]
            text = fmt(r["psnr"]) if len(full_of[n]) == 1 else f"{fmt(r['psnr'])} ({r['full_steps']:g} full)"
            cells.append(f"**{text}**" if r["psnr"] == best[n] else text)
        cells += [f"{by[name, n]['speedup']:.2f}x" for n in INTERVALS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    gap = result["default_minus_best_db"]
    lines += ["", "Default (fixed taylor 1) minus the best configuration, dB: "
              + ", ".join(f"n={n}: {gap[n]:+.2f}" for n in INTERVALS) + ".", ""]
    return lines


def main() -> None:
    torch.set_grad_enabled(False)
    torch.set_num_threads(1)  # tiny model: threads only add contention on shared cores
    start = time.perf_counter()
    variants = ("diffusers-init", "smooth-t") + (("trained-glyphs",) if (WEIGHTS / "transformer").is_dir() else ())
    results = [measure(init) for init in variants]
    elapsed = time.perf_counter() - start
    lines = [
        f"Command: `{COMMAND}`",
        "",
        ("Second architecture: diffusers `QwenImageTransformer2DModel`: "
        f"6 dual-stream blocks, 4 heads x 32 dims, {GRID * GRID} image tokens ({GRID}x{GRID} packed latents, "
        f"{CHANNELS} channels), {TEXT_TOKENS} text tokens, float32, CPU, 1 thread. With **random weights** (seeded, not "
        f"trained) and {TEXT_TOKENS} random text tokens, in two initialisations (see the "
        "script's docstring): `diffusers-init` as built, and `smooth-t`, whose time conditioning is re-initialised to "
        "vary smoothly over t with the block gates at full strength."
        + (" Third, `trained-glyphs`: the same architecture **trained** (`contrib/second-model/train.py`) as a "
           "pixel-space glyph generator, sampled with CFG 4.0 on 4 glyphs." if len(results) > 2 else "")),
        "",
        (f"Sampling: FlowMatchEulerDiscreteScheduler(shift={SHIFT}), {STEPS} steps, no CFG, seeds "
        f"{', '.join(map(str, SEEDS))} (random variants). Every configuration: one warm-up step, then a full step every n steps. "
        "PSNR (dB) of the final latent against full compute of the same seed (range = max - min of the full-compute "
        "latent), mean over seeds; best per interval in bold. `TAPConfig(interval=1)` reproduces full compute bit for "
        f"bit on every model (asserted). Speedup: wall-clock of the {len(SEEDS)} samples, median of {RUNS} runs, vs "
        f"full compute. Whole run: {elapsed:.0f} s."),
        "",
    ]
    for result in results:
        lines += table(result)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "second-model.md").write_text("\n".join(lines))
    (OUT / "second-model.json").write_text(json.dumps({
        "command": COMMAND,
        "model": {"class": "QwenImageTransformer2DModel", "weights": "random" if len(results) < 3 else
                  "random (diffusers-init, smooth-t) and trained (trained-glyphs)", "seed": MODEL_SEED},
        "sampling": {"scheduler": "FlowMatchEulerDiscreteScheduler", "shift": SHIFT, "steps": STEPS,
                     "seeds": list(SEEDS), "image_tokens": GRID * GRID, "text_tokens": TEXT_TOKENS,
                     "timing_runs": RUNS, "threads": 1},
        "results": results,
        "elapsed_seconds": elapsed,
    }, indent=2, default=str) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
