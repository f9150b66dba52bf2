"""Runtime.observe: tools outside the runtime see each full step's residual without patching it."""

from __future__ import annotations

import torch

import tap
from conftest import flux_inputs, tiny_flux


@torch.no_grad()
def test_an_observer_sees_each_full_steps_residual_until_it_is_removed():
    model, inputs = tiny_flux(), flux_inputs()
    seen = []
    with tap.accelerate(model, interval=3) as handle:
        stop = handle.runtime.observe(lambda context, step, residual: seen.append((context, step, residual.clone())))
        for index, t in enumerate(torch.linspace(1.0, 0.1, 7)):
            with model.cache_context("cond", step_index=index, num_inference_steps=7):
                model(hidden_states=inputs["latents"], encoder_hidden_states=inputs["encoder_hidden_states"],
                      pooled_projections=inputs["pooled_projections"], timestep=t.expand(1), img_ids=inputs["img_ids"],
                      txt_ids=inputs["txt_ids"], return_dict=False)
            if index == 3:
                stop()
        cached = handle.runtime.states.states()["cond"].r
    assert [(context, step) for context, step, _ in seen] == [("cond", 0), ("cond", 3)]
    torch.testing.assert_close(seen[-1][2], cached[-2], rtol=0, atol=0)  # step 6 was cached after the observer stopped
