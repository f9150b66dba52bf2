"""Bundled demo model: a tiny trained FLUX-architecture glyph generator, so tap runs offline on a CPU."""

from pathlib import Path

import torch

from .pipeline import CHARACTERS, GlyphEncoder, GlyphPipeline

DEMO_MODEL_PATH = Path(__file__).resolve().parent / "weights"


def load_demo_pipeline(device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> GlyphPipeline:
    """Load the shipped demo pipeline (weights are stored in float32) onto `device` in `dtype`."""
    pipe = GlyphPipeline.from_pretrained(str(DEMO_MODEL_PATH), dtype=dtype, low_cpu_mem_usage=False)
    return pipe.to(device)


__all__ = ["CHARACTERS", "DEMO_MODEL_PATH", "GlyphEncoder", "GlyphPipeline", "load_demo_pipeline"]
