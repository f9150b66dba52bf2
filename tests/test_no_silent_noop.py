"""No silent no-op: a loop tap can follow is accelerated, and one it cannot (every call starts a new
generation, so nothing is ever predicted) is named once."""

from __future__ import annotations

import pytest
import torch

import tap
from conftest import flux_inputs, tiny_flux
from tiny_pipelines import tiny_wan_pipeline


def flux_call(inputs, latents, t):
    return dict(hidden_states=latents, encoder_hidden_states=inputs["encoder_hidden_states"],
                pooled_projections=inputs["pooled_projections"], timestep=t.expand(1), img_ids=inputs["img_ids"],
                txt_ids=inputs["txt_ids"], return_dict=False)


@torch.no_grad()
def test_a_sampler_whose_time_runs_up_without_a_step_index_is_named():
    model, inputs = tiny_flux(), flux_inputs()
    with tap.accelerate(model, interval=2) as handle:
        with pytest.warns(RuntimeWarning, match="each started a new generation"):
            for t in torch.linspace(0.1, 0.9, 6):  # time from noise (0) to clean (1), no cache_context
                model(**flux_call(inputs, inputs["latents"], t))
        assert handle.stats().predicted_steps == 0


@torch.no_grad()
def test_a_loop_that_never_steps_the_pipelines_scheduler_still_predicts(recwarn):
    pipe = tiny_wan_pipeline(two_experts=True)
    latents = torch.randn(1, 4, 2, 4, 4)
    text = torch.randn(1, 4, 16)
    pipe.scheduler.set_timesteps(6)
    with tap.accelerate(pipe, interval=2) as handle:
        for t in pipe.scheduler.timesteps:  # the scheduler's timesteps, but no scheduler.step: tap finds each one's index
            pipe.transformer(hidden_states=latents, timestep=t.expand(1), encoder_hidden_states=text, return_dict=False)
        stats = handle.stats()
    assert (stats.steps, stats.full_steps, stats.predicted_steps) == (6, 3, 3)
    assert not [w for w in recwarn if "new generation" in str(w.message)]


@torch.no_grad()
def test_an_ordinary_loop_is_not_warned_about(recwarn):
    model, inputs = tiny_flux(), flux_inputs()
    with tap.accelerate(model, interval=2) as handle:
        for t in torch.linspace(1.0, 0.1, 6):
            model(**flux_call(inputs, inputs["latents"], t))
        assert handle.stats().predicted_steps > 0
    assert not [w for w in recwarn if "new generation" in str(w.message)]
