"""Tiny models of every diffusion transformer class in the installed diffusers, for the test over all of them.

Each family module (``flux_family``, ``wan_family``, ...) defines ``CASES``: one :class:`ZooCase`
per class, a model a few blocks deep with random weights and the inputs of a sampling loop, shaped
like the class's tests in diffusers. :func:`sample` drives a case for a few flow-matching steps the
way a hand-written loop does, inside ``cache_context("cond", step_index=i, num_inference_steps=n)``
where the class has diffusers' ``CacheMixin`` (without it, tap counts the calls itself).
"""

from __future__ import annotations

import contextlib
import importlib
from typing import Any, Callable

import attrs
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

FAMILIES = ("flux_family", "wan_family", "joint_sequence", "dual_stream", "basic_family", "multi_stream")
NOT_DITS = {"Transformer2DModel", "DreamLiteTransformer2DModel"}  # U-Net-era components, refused by design
FAR = 0.5  # relative distance from the plain model at interval 3 that no correctly wired tiny model reaches


def dit_classes() -> list[str]:
    """The diffusion transformer classes of the installed diffusers, by name."""
    import diffusers

    return sorted(
        name for name in dir(diffusers)
        if name.endswith(("Transformer2DModel", "Transformer3DModel")) and name not in NOT_DITS
    )


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b||."""
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


def first_tensor(output: Any) -> torch.Tensor:
    """The denoiser's prediction in a ``return_dict=False`` output (a tuple) or a bare tensor."""
    while isinstance(output, (tuple, list)):
        output = output[0]
    return output


def same_shape(output: Any, latents: torch.Tensor) -> torch.Tensor:
    """The prediction cut to the latents' channels (dim 1), for models that also predict a variance."""
    prediction = first_tensor(output)
    if prediction.shape != latents.shape and prediction.ndim == latents.ndim:
        prediction = prediction[:, : latents.shape[1]]
    return prediction


@attrs.frozen
class ZooCase:
    """One transformer class, tiny.

    ``build()`` makes the model (random weights; the caller seeds torch). ``inputs(generator)``
    returns ``"latents"`` (batch 2) and any fixed conditioning; ``call(inputs, latents, t)`` maps
    them, the current latents and the scheduler's timestep ``t`` (1000 to 0) to the forward's
    keyword arguments (``return_dict`` is added). ``velocity(output, latents)`` turns the output into
    a tensor shaped like the latents. ``steps`` is the sampling loop's length.
    """

    name: str
    build: Callable[[], torch.nn.Module]
    inputs: Callable[[torch.Generator], dict]
    call: Callable[[dict, torch.Tensor, torch.Tensor], dict]
    velocity: Callable[[Any, torch.Tensor], torch.Tensor] = same_shape
    steps: int = 8


def cases() -> dict[str, ZooCase]:
    """Every case of every family module, by class name."""
    found: dict[str, ZooCase] = {}
    for family in FAMILIES:
        for case in importlib.import_module(f"zoo.{family}").CASES:
            if case.name in found:
                raise ValueError(f"two zoo cases for {case.name}")
            found[case.name] = case
    return found


def build(case: ZooCase, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return case.build().eval()


@torch.no_grad()
def sample(case: ZooCase, model: torch.nn.Module, seed: int = 0, steps: int | None = None) -> torch.Tensor:
    """Flow-matching Euler sampling of ``case`` on ``model``; returns the final latents."""
    steps = steps or case.steps
    inputs = case.inputs(torch.Generator().manual_seed(seed))
    latents = inputs["latents"]
    scheduler = FlowMatchEulerDiscreteScheduler()
    scheduler.set_timesteps(steps)
    for index, t in enumerate(scheduler.timesteps):
        context = getattr(model, "cache_context", None)  # classes without diffusers' CacheMixin have none
        with context("cond", step_index=index, num_inference_steps=steps) if context else contextlib.nullcontext():
            output = model(**case.call(inputs, latents, t), return_dict=False)
        latents = scheduler.step(case.velocity(output, latents), t, latents, return_dict=False)[0]
    return latents
