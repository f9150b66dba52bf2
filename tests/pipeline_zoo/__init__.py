"""Tiny diffusers pipelines of the DiT families, built locally on the CPU (no hub access), for the pipeline tests.

Each family module (``flux_pipelines``, ...) defines ``CASES``: one :class:`PipelineCase` per
pipeline variant (text-to-image, image-to-image, inpainting, editing, ControlNet, video), a tiny
pipeline with random weights and the keyword arguments of one short generation.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

import attrs
import torch

FAMILIES = ("flux_pipelines", "qwen_pipelines", "wan_pipelines", "other_pipelines")


@attrs.frozen
class PipelineCase:
    """One pipeline variant, tiny.

    ``build()`` makes the pipeline (random weights; the caller seeds torch). ``call()`` returns the
    keyword arguments of one generation (prompt, ``num_inference_steps``, input images, a seeded
    generator, ``output_type="np"`` or ``"latent"``). ``calls`` is how many times that generation
    calls its denoiser(s) in all (steps times CFG calls, fewer when ``strength < 1`` starts the run
    part-way). ``saveable``: a text-to-image or text-to-video pipeline that also runs through
    ``tap generate`` from a saved folder, with ``generate_args`` (e.g. ``--height 32 --width 32``).
    ``how`` says in a sentence what the case checks that others do not (reference tokens, strength).
    """

    name: str
    build: Callable[[], Any]
    call: Callable[[], dict]
    calls: int
    how: str = ""
    saveable: bool = False
    generate_args: tuple[str, ...] = ()


def cases() -> dict[str, PipelineCase]:
    found: dict[str, PipelineCase] = {}
    for family in FAMILIES:
        for case in importlib.import_module(f"pipeline_zoo.{family}").CASES:
            if case.name in found:
                raise ValueError(f"two pipeline cases named {case.name}")
            found[case.name] = case
    return found


def build(case: PipelineCase, seed: int = 0):
    torch.manual_seed(seed)
    pipe = case.build()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def output_of(result: Any) -> torch.Tensor:
    """A pipeline's images, frames or latents as one float tensor."""
    for field in ("frames", "images", "image"):
        value = getattr(result, field, None)
        if value is not None:
            break
    else:
        value = result[0]
    if isinstance(value, list):
        value = [torch.as_tensor(__import__("numpy").asarray(v)) for v in value]
        value = torch.stack(value)
    return torch.as_tensor(value).float()


@torch.no_grad()
def generate(case: PipelineCase, pipe) -> torch.Tensor:
    return output_of(pipe(**case.call()))
