"""Draw one sample per character with the demo model and tile them into `docs/images/demo-grid.png`."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from PIL import Image, ImageDraw, ImageFont

from tap_plugins.demo import DEMO_MODEL_PATH, GlyphPipeline

REPO_ROOT = Path(__file__).resolve().parents[2]
GRID_CHARACTERS = "ABGKQRWZabegks37"
TILE, LABEL, COLUMNS = 128, 20, 8


def tile_grid(images: list[Image.Image], labels: str) -> Image.Image:
    """Lay out the images (upscaled to TILE px) in rows of COLUMNS, each with its prompt written underneath."""
    rows = -(-len(images) // COLUMNS)
    grid = Image.new("L", (COLUMNS * TILE, rows * (TILE + LABEL)), 255)
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default(size=14)
    for i, (image, label) in enumerate(zip(images, labels)):
        x, y = (i % COLUMNS) * TILE, (i // COLUMNS) * (TILE + LABEL)
        grid.paste(image.resize((TILE, TILE), Image.NEAREST), (x, y))
        draw.text((x + TILE // 2, y + TILE + LABEL // 2), f'"{label}"', fill=0, font=font, anchor="mm")
    return grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", type=Path, default=DEMO_MODEL_PATH)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "images" / "demo-grid.png")
    parser.add_argument("--characters", default=GRID_CHARACTERS)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--guidance-scale", type=float, default=None, help="default: the pipeline's default")
    parser.add_argument("--shift", type=float, default=None, help="override the scheduler shift (for tuning)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(2)
    pipe = GlyphPipeline.from_pretrained(args.weights, low_cpu_mem_usage=False)
    if args.shift is not None:
        pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config, shift=args.shift)
    extra = {} if args.guidance_scale is None else {"guidance_scale": args.guidance_scale}
    images = pipe(
        list(args.characters),
        num_inference_steps=args.steps,
        generator=torch.Generator().manual_seed(args.seed),
        **extra,
    ).images
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tile_grid(images, args.characters).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
