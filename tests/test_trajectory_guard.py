"""The trajectory guard: latents edited mid-run restart the forecast exactly as calling invalidate by
hand does; untouched runs never restart; invalidate() forgets the history but keeps the generation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import tap
from tap_plugins.demo import load_demo_pipeline
from tiny_pipelines import tiny_wan_pipeline

STEPS, EDIT_AT = 20, 8
EDITS = {
    "scale": lambda latents: latents * 0.5,
    "re-noise": lambda latents: 0.7 * latents + 0.7 * torch.randn(latents.shape, generator=torch.Generator().manual_seed(1)),
}


@pytest.fixture(scope="module")
def demo():
    pipe = load_demo_pipeline()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate(pipe, edit=None, after_edit=None, prompts="Ag7") -> list[np.ndarray]:
    def callback(_, index, t, tensors):
        if index == EDIT_AT:
            tensors["latents"] = EDITS[edit](tensors["latents"])
            if after_edit is not None:
                after_edit()
        return tensors

    given = {"callback_on_step_end": callback} if edit else {}
    return [pipe(p, num_inference_steps=STEPS, generator=torch.Generator().manual_seed(0), output_type="np", **given).images[0]
            for p in prompts]


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_edited_latents_restart_the_forecast_exactly_as_invalidating_by_hand_does(demo, edit):
    with tap.accelerate(demo, trajectory_guard=False) as handle:
        by_hand = generate(demo, edit, after_edit=handle.invalidate)
    with tap.accelerate(demo, trajectory_guard=False):
        unguarded = generate(demo, edit)
    with pytest.warns(RuntimeWarning, match="jumped off their trajectory") as caught:
        with tap.accelerate(demo) as handle:
            guarded = generate(demo, edit)
            stats = handle.stats()
    assert len([w for w in caught if "trajectory" in str(w.message)]) == 1
    assert stats.restarts == 1  # the last prompt's generation
    for ours, theirs, plain in zip(guarded, by_hand, unguarded):
        np.testing.assert_array_equal(ours, theirs)
        assert not np.array_equal(ours, plain)


def test_untouched_runs_never_restart(demo, recwarn):
    with tap.accelerate(demo) as handle:
        for steps in (17, 28, 50):
            for prompt in "Ag7R":
                demo(prompt, num_inference_steps=steps, generator=torch.Generator().manual_seed(0), output_type="np")
                assert handle.stats().restarts == 0, (steps, prompt)
    assert not [w for w in recwarn if "trajectory" in str(w.message)]


@torch.no_grad()
def test_a_two_expert_wan_run_never_restarts():
    pipe = tiny_wan_pipeline(two_experts=True)
    pipe.set_progress_bar_config(disable=True)
    with tap.accelerate(pipe, interval=2) as handle:
        pipe("a cat", num_inference_steps=24, height=16, width=16, num_frames=5, generator=torch.Generator().manual_seed(0),
             output_type="latent")
        stats = handle.stats()
    assert stats.predicted_steps > 0 and stats.restarts == 0


def test_invalidate_keeps_the_generation_and_its_statistics_but_forgets_the_history(demo):
    with tap.accelerate(demo, interval=4) as handle:
        def callback(_, index, t, tensors):
            if index == EDIT_AT:
                tap.invalidate(demo)
            return tensors

        demo("A", num_inference_steps=STEPS, generator=torch.Generator().manual_seed(0), output_type="np",
             callback_on_step_end=callback)
        stats = handle.stats()
    # grid 0, 4, 8, 12, 16, and step 9: the history forgotten after step 8 (step 10 forecasts from step 9 alone)
    assert (stats.steps, stats.full_steps) == (STEPS, 6)
    assert stats.restarts == 0, "invalidate is the caller's word, not a detected jump"


def test_the_guard_switched_off_leaves_an_untouched_run_exactly_as_it_was(demo):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with tap.accelerate(demo) as handle:
            guarded = generate(demo, prompts="A")
        with tap.accelerate(demo, trajectory_guard=False):
            unguarded = generate(demo, prompts="A")
    np.testing.assert_array_equal(guarded[0], unguarded[0])
    assert handle.stats().restarts == 0
