"""Shared fixtures: tiny transformers built from configs and a plain flow-matching sampling loop."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
from hypothesis import settings

import tap

# Property tests draw max_examples cases under the profile TAP_HYPOTHESIS_PROFILE names: dev (default)
# is quick, ci (.ci/run) draws more and derandomizes, so that a failure there repeats on rerun.
settings.register_profile("dev", max_examples=40, deadline=None)
settings.register_profile("ci", max_examples=150, deadline=None, derandomize=True, database=None, print_blob=True)
settings.load_profile(os.environ.get("TAP_HYPOTHESIS_PROFILE", "dev"))


def tiny_flux(seed: int = 0) -> FluxTransformer2DModel:
    """A 3-block FLUX (1 double + 2 single) with random weights, for CPU tests."""
    torch.manual_seed(seed)
    model = FluxTransformer2DModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=2, attention_head_dim=8,
        num_attention_heads=2, joint_attention_dim=16, pooled_projection_dim=8, axes_dims_rope=(2, 2, 4),
    )
    return model.eval()


def flux_inputs(batch: int = 1, tokens: int = 16, text: int = 3, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    side = int(tokens**0.5)
    img_ids = torch.zeros(side, side, 3)
    img_ids[..., 1] = torch.arange(side)[:, None]
    img_ids[..., 2] = torch.arange(side)[None, :]
    return {
        "latents": torch.randn(batch, tokens, 4, generator=generator),
        "encoder_hidden_states": torch.randn(batch, text, 16, generator=generator),
        "pooled_projections": torch.randn(batch, 8, generator=generator),
        "img_ids": img_ids.reshape(-1, 3),
        "txt_ids": torch.zeros(text, 3),
    }


@torch.no_grad()
def sample_loop(model, latents, make_call, steps: int, context: str | None = None, counter=None):
    """Euler flow-matching sampling with ``model(**make_call(latents, t))``; returns the final latents
    and every step's model output. With a :class:`BlockCounter`, ``counter.per_step`` receives the
    block evaluations of each step."""
    scheduler = FlowMatchEulerDiscreteScheduler()
    scheduler.set_timesteps(steps)
    outputs = []
    for t in scheduler.timesteps:
        before = counter.calls if counter else 0
        kwargs = {**make_call(latents, t), "return_dict": False}
        if context is None:
            output = model(**kwargs)[0]
        else:
            with model.cache_context(context):
                output = model(**kwargs)[0]
        outputs.append(output)
        if counter:
            counter.per_step.append(counter.calls - before)
        latents = scheduler.step(output, t, latents, return_dict=False)[0]
    return latents, outputs


def sample_flux(transformer, steps: int = 12, batch: int = 1, seed: int = 0, context: str | None = None, counter=None):
    """:func:`sample_loop` on a FLUX transformer with :func:`flux_inputs`."""
    inputs = flux_inputs(batch=batch, seed=seed)

    def make_call(latents, t):
        return dict(
            hidden_states=latents, encoder_hidden_states=inputs["encoder_hidden_states"],
            pooled_projections=inputs["pooled_projections"], timestep=(t / 1000).expand(batch),
            img_ids=inputs["img_ids"], txt_ids=inputs["txt_ids"],
        )

    return sample_loop(transformer, inputs["latents"], make_call, steps, context, counter)


class BlockCounter:
    """Counts real block evaluations (calls of each block's attention), per sampling step."""

    def __init__(self, transformer) -> None:
        self.calls = 0
        self.per_step: list[int] = []
        blocks = [*transformer.transformer_blocks, *transformer.single_transformer_blocks]
        self.handles = [b.attn.register_forward_hook(self._count) for b in blocks]

    def _count(self, *_):
        self.calls += 1

    def remove(self):
        for handle in self.handles:
            handle.remove()


@pytest.fixture
def flux():
    model = tiny_flux()
    yield model
    handle = getattr(model, "_tap_handle", None)
    if handle is not None:
        handle.disable()


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tiny models gain nothing from intra-op threads, and lose 100x when another process holds the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def fresh_plugins():
    """Each test sees the installed plugins only, never another test's run-time registrations."""
    tap.plugins.reload()
    yield
    tap.plugins.reload()


DEMO_STEPS, DEMO_INTERVAL = 8, 3  # the demo runs of the production-stack and copies tests


def quiet_demo():
    """The bundled demo pipeline with its progress bar off."""
    from tap_plugins.demo import load_demo_pipeline

    pipe = load_demo_pipeline()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def demo_image(pipe, prompt: str = "A", steps: int = DEMO_STEPS) -> torch.Tensor:
    """One prompt's image at seed 0, as a [1, 1, 64, 64] tensor."""
    return pipe([prompt], num_inference_steps=steps, generator=torch.Generator().manual_seed(0), output_type="pt").images


@pytest.fixture(scope="session")
def demo_references():
    """The demo's image of prompt A computed in full and with tap at DEMO_INTERVAL."""
    pipe = quiet_demo()
    full = demo_image(pipe)
    with tap.accelerate(pipe, interval=DEMO_INTERVAL):
        return full, demo_image(pipe)



def tap_cli(capsys, *args: str) -> tuple[int, str, str]:
    """``tap ARGS`` run in this process (no interpreter start-up): (exit code, stdout, stderr)."""
    from tap.cli import main

    try:
        code = main(list(args))
    except SystemExit as exit:  # argparse refusals
        code = exit.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_tap(*args, timeout=300, env=None):
    """``python -m tap ARGS`` in a fresh interpreter: the subprocess smoke tests."""
    environment = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "tap", *args], capture_output=True, text=True, timeout=timeout, env=environment)
