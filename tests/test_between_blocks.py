"""What a transformer adds to the image tokens between blocks (ControlNet residuals) stays exact on predicted steps.

Calls given such inputs cache the sum of each block's own residual, so the additions are not
forecast and then added a second time; without that, a predicted step would count them twice.
"""

from __future__ import annotations

import contextlib

import torch

import tap
from conftest import flux_inputs, tiny_flux
from tap_plugins.adapters.flux import FluxAdapter

STEPS = 4


class DoubleCounting(FluxAdapter):
    """FLUX without the summed block residuals: the additions end up in the forecast residual."""

    name = "flux-double-counting"
    adds_between_blocks = ()


def head_inputs(model, control: list[torch.Tensor] | None, **config) -> list[torch.Tensor]:
    """The image tokens reaching the head (``norm_out``) at each of STEPS steps of a loop; tap on only with a config."""
    inputs = flux_inputs(batch=1)
    seen = []
    handle = model.norm_out.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    try:
        with (tap.accelerate(model, **config) if config else contextlib.nullcontext()), torch.no_grad():
            latents = inputs["latents"]
            for step in range(STEPS):
                with model.cache_context("cond", step_index=step, num_inference_steps=STEPS):
                    out = model(
                        hidden_states=latents, encoder_hidden_states=inputs["encoder_hidden_states"],
                        pooled_projections=inputs["pooled_projections"], timestep=torch.tensor([1.0 - step / STEPS]),
                        img_ids=inputs["img_ids"], txt_ids=inputs["txt_ids"], controlnet_block_samples=control,
                        return_dict=False,
                    )[0]
                latents = latents - 0.25 * out
    finally:
        handle.remove()
    return seen


def test_every_step_computed_is_exact_with_controlnet_residuals():
    model = tiny_flux()
    control = [torch.randn(1, 16, 16, generator=torch.Generator().manual_seed(1))]
    computed = head_inputs(model, control, interval=1)
    plain = head_inputs(model, control)
    assert len(computed) == len(plain) == STEPS
    for ours, theirs in zip(computed, plain):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_a_predicted_step_adds_the_controlnet_residual_once():
    model = tiny_flux()
    control = [torch.randn(1, 16, 16, generator=torch.Generator().manual_seed(1))]  # added after the one double block
    tap.register_adapter(DoubleCounting)
    try:
        once = head_inputs(model, control, predictor="reuse", interval=2)
        twice = head_inputs(model, control, predictor="reuse", interval=2, adapter=DoubleCounting.name)
    finally:
        tap.unregister_adapter(DoubleCounting.name)
    torch.testing.assert_close(once[0], twice[0])  # step 0 runs in full either way
    # Step 1 reuses step 0's residual: summed block by block it leaves the residual out, end to end it holds it too.
    torch.testing.assert_close(twice[1] - once[1], control[0], rtol=1e-4, atol=1e-5)
