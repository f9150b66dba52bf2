"""Train tap's bundled demo model (a tiny pixel-space FLUX glyph generator) and write `plugins/demo/weights/`.

Data are the characters A-Z, a-z, 0-9 rendered with the TrueType fonts that ship inside matplotlib, randomly
shifted/scaled/rotated on the fly. The loss is conditional rectified flow (velocity = noise - image) with label
dropout so that classifier-free guidance works. Everything is seeded; see README.md for the command.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import time
from pathlib import Path

# On a shared 2-core machine, spinning OpenMP workers slow training up to 10x whenever another process runs.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import matplotlib  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from diffusers import FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402
from tqdm import tqdm  # noqa: E402

from tap_plugins.demo.pipeline import (  # noqa: E402
    CHARACTERS,
    IMAGE_SIZE,
    GlyphEncoder,
    GlyphPipeline,
    image_ids,
    pack_pixels,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

# matplotlib fonts that contain real glyphs for all of CHARACTERS (the "Display", STIX "NonUni"/"Siz" and
# LastResort fonts lack them or draw placeholders; cmex/cmsy/cmmi map ASCII to math symbols).
FONTS = [
    *(f"DejaVuSans{s}.ttf" for s in ("", "-Bold", "-Oblique", "-BoldOblique")),
    *(f"DejaVuSansMono{s}.ttf" for s in ("", "-Bold", "-Oblique", "-BoldOblique")),
    *(f"DejaVuSerif{s}.ttf" for s in ("", "-Bold", "-Italic", "-BoldItalic")),
    *(f"STIXGeneral{s}.ttf" for s in ("", "Bol", "Italic", "BolIta")),
    "cmr10.ttf",
    "cmb10.ttf",
    "cmss10.ttf",
    "cmti10.ttf",
    "cmtt10.ttf",
]

# Glyphs are rendered at 2x and the augmentation resamples them down to IMAGE_SIZE, which anti-aliases thin strokes.
RENDER_SIZE = 2 * IMAGE_SIZE
FONT_PX = 88  # at RENDER_SIZE: capitals ~64 px tall, so letter case stays visible by size
MAX_EXTENT = 108  # glyphs larger than this (W, j, ...) are scaled down to fit


def render_glyph(font: ImageFont.FreeTypeFont, char: str) -> torch.Tensor:
    """Ink coverage in [0, 1] of `char`, bounding-box centred on a RENDER_SIZE^2 canvas."""
    canvas = Image.new("L", (4 * FONT_PX, 4 * FONT_PX), 0)
    ImageDraw.Draw(canvas).text((2 * FONT_PX, 2 * FONT_PX), char, fill=255, font=font, anchor="mm")
    glyph = canvas.crop(canvas.getbbox())
    scale = min(1.0, MAX_EXTENT / max(glyph.size))
    if scale < 1.0:
        glyph = glyph.resize((max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale))), Image.LANCZOS)
    out = Image.new("L", (RENDER_SIZE, RENDER_SIZE), 0)
    out.paste(glyph, ((RENDER_SIZE - glyph.width) // 2, (RENDER_SIZE - glyph.height) // 2))
    return torch.frombuffer(bytearray(out.tobytes()), dtype=torch.uint8).float().div(255).view(RENDER_SIZE, -1)


def render_dataset() -> tuple[torch.Tensor, torch.Tensor]:
    """All (font, character) glyphs as [N, 1, RENDER_SIZE, RENDER_SIZE] ink maps and their character indices [N]."""
    font_dir = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    glyphs, labels = [], []
    for name in FONTS:
        font = ImageFont.truetype(str(font_dir / name), FONT_PX)
        for index, char in enumerate(CHARACTERS):
            glyphs.append(render_glyph(font, char))
            labels.append(index)
    return torch.stack(glyphs).unsqueeze(1), torch.tensor(labels)


def augment(glyphs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random small affine jitter (shift <= 4 px, scale 0.85-1.1, rotation <= 8 deg), then black-on-white in [-1, 1]."""
    b = glyphs.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(b, generator=generator) * (high - low) + low

    angle = uniform(-8, 8) * math.pi / 180
    scale = 1 / uniform(0.85, 1.1)
    shift = torch.stack([uniform(-1, 1), uniform(-1, 1)], dim=1) * (4 / (IMAGE_SIZE / 2))
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], dim=1)
    theta = torch.cat([theta, shift.unsqueeze(-1)], dim=2)
    grid = F.affine_grid(theta, list(glyphs.shape), align_corners=False)
    ink = F.avg_pool2d(F.grid_sample(glyphs, grid, align_corners=False), RENDER_SIZE // IMAGE_SIZE)
    return 1 - 2 * ink


def build_pipeline(args: argparse.Namespace) -> GlyphPipeline:
    """Fresh (untrained) pipeline with the demo architecture."""
    head_dim = args.inner_dim // args.heads
    rope_rest = (head_dim - head_dim // 4) // 2
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,
        num_layers=args.double_layers,
        num_single_layers=args.single_layers,
        attention_head_dim=head_dim,
        num_attention_heads=args.heads,
        joint_attention_dim=args.inner_dim,
        pooled_projection_dim=args.inner_dim,
        axes_dims_rope=(head_dim - 2 * rope_rest, rope_rest, rope_rest),
    )
    encoder = GlyphEncoder(num_tokens=4, joint_attention_dim=args.inner_dim, pooled_projection_dim=args.inner_dim)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=args.shift)
    return GlyphPipeline(transformer=transformer, scheduler=scheduler, encoder=encoder)


def flow_matching_loss(
    pipe: GlyphPipeline, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Rectified-flow loss: x_t = (1 - t) x + t noise, the transformer predicts noise - x; t is logit-normal."""
    x0 = pack_pixels(images)
    noise = torch.randn(x0.shape, generator=generator)
    t = torch.sigmoid(torch.randn(x0.shape[0], generator=generator))
    xt = (1 - t[:, None, None]) * x0 + t[:, None, None] * noise
    hidden, pooled = pipe.encoder(labels)
    prediction = pipe.transformer(
        hidden_states=xt,
        encoder_hidden_states=hidden,
        pooled_projections=pooled,
        timestep=t,
        img_ids=image_ids(),
        txt_ids=torch.zeros(hidden.shape[1], 3),
        return_dict=False,
    )[0]
    return F.mse_loss(prediction.float(), noise - x0)


def save(pipe: GlyphPipeline, ema: list[torch.nn.Module], out: Path) -> None:
    """Write the pipeline with the EMA weights in the diffusers layout."""
    GlyphPipeline(transformer=ema[0], scheduler=pipe.scheduler, encoder=ema[1]).save_pretrained(out)


def train(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data_gen = torch.Generator().manual_seed(args.seed + 1)

    glyphs, labels = render_dataset()
    pipe = build_pipeline(args)
    modules = [pipe.transformer, pipe.encoder]
    ema = [copy.deepcopy(m).requires_grad_(False) for m in modules]
    params = [p for m in modules for p in m.parameters()]
    print(f"{len(glyphs)} glyphs from {len(FONTS)} fonts; {sum(p.numel() for p in params) / 1e6:.2f}M parameters")

    optimizer = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.99), weight_decay=0.01)
    warmup = 100

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.1 + 0.45 * (1 + math.cos(math.pi * (step - warmup) / (args.steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)

    start, losses = time.perf_counter(), []
    progress = tqdm(range(args.steps), mininterval=10)
    for step in progress:
        index = torch.randint(len(glyphs), (args.batch_size,), generator=data_gen)
        cond = labels[index].clone()
        cond[torch.rand(args.batch_size, generator=data_gen) < args.label_dropout] = pipe.encoder.null_id
        images = augment(glyphs[index], data_gen)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            loss = flow_matching_loss(pipe, images, cond, data_gen)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()

        decay = min(args.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for m, e in zip(modules, ema):
                torch._foreach_lerp_(list(e.parameters()), list(m.parameters()), 1 - decay)

        losses.append(loss.item())
        if (step + 1) % 50 == 0:
            progress.set_postfix(loss=f"{sum(losses[-50:]) / 50:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
        if args.save_every and (step + 1) % args.save_every == 0 and step + 1 < args.steps:
            save(pipe, ema, args.out)

    save(pipe, ema, args.out)
    tail = losses[-200:]
    print(f"final loss (mean of last {len(tail)} steps): {sum(tail) / len(tail):.4f}")
    print(f"wall time: {(time.perf_counter() - start) / 60:.1f} min; weights written to {args.out}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "plugins" / "demo" / "weights")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--ema-decay", type=float, default=0.999)
    parser.add_argument("--label-dropout", type=float, default=0.1)
    parser.add_argument("--inner-dim", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--double-layers", type=int, default=2)
    parser.add_argument("--single-layers", type=int, default=6)
    parser.add_argument("--shift", type=float, default=3.0, help="sampling shift stored in the scheduler config")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True, help="bf16 autocast")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save-every", type=int, default=500, help="also write the weights every N steps")
    return parser.parse_args()


if __name__ == "__main__":
    train(parse_args())
