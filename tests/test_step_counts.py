"""The default across step counts: at least nine full steps on a grid that ends half an interval early,
runs too short for it computed exactly as without tap (and said once), and a hand-written loop that
either tells tap its step count and is accelerated, or is warned about."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from hypothesis import given, strategies as st

import tap
from conftest import flux_inputs, tiny_flux
from tap.cli.bench import Record
from tap.cli.report import markdown_table
from tap.runtime import build_schedule
from tap.schedule import StepView
from tap_plugins.demo import load_demo_pipeline
from tiny_pipelines import tiny_wan_pipeline

DEFAULT = build_schedule(tap.TAPConfig())


@pytest.fixture(scope="module")
def demo():
    pipe = load_demo_pipeline()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def image(pipe, steps: int) -> np.ndarray:
    return pipe("A", num_inference_steps=steps, generator=torch.Generator().manual_seed(0), output_type="np").images[0]


@given(st.integers(1, 400))
def test_the_default_holds_at_least_nine_full_steps_on_a_grid_that_ends_half_an_interval_early(steps):
    planned = DEFAULT.planned_full_steps(steps)
    interval = (steps - 1) // 8
    if interval <= 1:  # 16 steps or fewer: every step computed
        assert planned == list(range(steps)) and DEFAULT.left_alone(steps) is not None
        return
    assert DEFAULT.left_alone(steps) is None
    assert planned[0] == 0 and planned[-1] == steps - 1 - interval // 2
    assert {b - a for a, b in zip(planned[1:], planned[2:])} == {interval}
    assert 0 < planned[1] <= interval
    assert 9 <= len(planned) <= 12


@pytest.mark.parametrize("steps, full", [(17, 9), (20, 10), (28, 10), (50, 9), (100, 9)])
def test_the_defaults_full_steps_at_common_step_counts(steps, full):
    assert len(DEFAULT.planned_full_steps(steps)) == full


def test_an_explicit_interval_keeps_its_grid_at_every_step_count():
    schedule = build_schedule(tap.TAPConfig(interval=6))
    for steps in (8, 12, 28, 50):
        assert schedule.planned_full_steps(steps) == list(range(0, steps, 6))
        assert schedule.left_alone(steps) is None
    assert schedule.left_alone(None) is None


def test_a_partial_run_places_its_grid_over_the_steps_it_runs():
    """Image-to-image at strength 0.5 of 40 steps runs steps 20..39: the grid of a 20-step run, shifted."""
    full = [step for step in range(20, 40) if DEFAULT.is_full(StepView(step, 40, None, 0, first_step=20))]
    assert [step - 20 for step in full] == DEFAULT.planned_full_steps(20)


@pytest.mark.parametrize("steps", [4, 8])
def test_a_few_step_run_comes_out_exactly_as_without_tap_and_is_said_once(demo, steps):
    expected = image(demo, steps)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with tap.accelerate(demo) as handle:
            ours, again = image(demo, steps), image(demo, steps)
            stats = handle.stats()
    np.testing.assert_array_equal(ours, expected)
    np.testing.assert_array_equal(again, expected)
    assert (stats.full_steps, stats.predicted_steps, stats.blocks_skipped) == (steps, 0, 0)
    assert stats.cache_bytes == 0, "a run left alone caches nothing"
    assert f"a run of {steps} steps is too short" in stats.left_alone
    assert "left alone" in str(stats)
    said = [w for w in caught if "too short to forecast" in str(w.message)]
    assert len(said) == 1


def test_a_run_long_enough_is_accelerated_and_not_left_alone(demo):
    with tap.accelerate(demo) as handle:
        image(demo, 20)
        stats = handle.stats()
    assert (stats.full_steps, stats.predicted_steps, stats.left_alone) == (10, 10, None)


def test_a_shift_1_run_is_one_generation_although_its_last_timestep_is_its_first_over_1000(demo):
    """The demo pipeline feeds t / 1000: at shift 1 its first call's 1.0 is also the schedule's last timestep."""
    shipped = demo.scheduler
    demo.scheduler = FlowMatchEulerDiscreteScheduler.from_config(shipped.config, shift=1.0)
    try:
        with tap.accelerate(demo, interval=4) as handle:
            image(demo, 20)
            stats = handle.stats()
    finally:
        demo.scheduler = shipped
    assert (stats.steps, stats.full_steps, stats.predicted_steps) == (20, 5, 15)  # steps 0, 4, 8, 12, 16


def flux_call(inputs, t):
    return dict(hidden_states=inputs["latents"], encoder_hidden_states=inputs["encoder_hidden_states"],
                pooled_projections=inputs["pooled_projections"], timestep=t.expand(1), img_ids=inputs["img_ids"],
                txt_ids=inputs["txt_ids"], return_dict=False)


@torch.no_grad()
def test_a_loop_that_gives_no_step_count_is_computed_in_full_and_warned_about_once():
    model, inputs = tiny_flux(), flux_inputs()
    with tap.accelerate(model) as handle:
        with pytest.warns(RuntimeWarning, match="cannot read this generation's step count") as caught:
            for t in torch.linspace(1.0, 0.05, 30):
                model(**flux_call(inputs, t))
        stats = handle.stats()
    assert (stats.steps, stats.predicted_steps) == (30, 0)
    assert "num_inference_steps" in stats.left_alone
    assert len([w for w in caught if "step count" in str(w.message)]) == 1


@torch.no_grad()
def test_a_loop_that_names_its_step_count_in_the_cache_context_follows_the_default(recwarn):
    model, inputs = tiny_flux(), flux_inputs()
    with tap.accelerate(model) as handle:
        for index, t in enumerate(torch.linspace(1.0, 0.05, 28)):
            with model.cache_context("cond", step_index=index, num_inference_steps=28):
                model(**flux_call(inputs, t))
        stats = handle.stats()
    assert (stats.full_steps, stats.predicted_steps, stats.left_alone) == (10, 18, None)
    assert not [w for w in recwarn if "tap:" in str(w.message)]


@torch.no_grad()
def test_a_two_expert_pipeline_driven_by_hand_places_each_experts_full_steps_over_its_own_part():
    """The scheduler's timesteps, but no scheduler.step: tap reads each call's index and the run's step count.
    The second expert starts a generation of its own at step 20 (its history starts there), whose 20
    steps get their own grid."""
    pipe = tiny_wan_pipeline(two_experts=True)
    latents, text = torch.randn(1, 4, 2, 4, 4), torch.randn(1, 4, 16)
    pipe.scheduler.set_timesteps(40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to say: both parts are accelerated
        with tap.accelerate(pipe) as handle:
            for index, t in enumerate(pipe.scheduler.timesteps):
                expert = pipe.transformer if index < 20 else pipe.transformer_2
                expert(hidden_states=latents, timestep=t.expand(1), encoder_hidden_states=text, return_dict=False)
            stats = handle.stats()
    first, second = stats.denoisers["transformer"], stats.denoisers["transformer_2"]
    assert first.full_steps == len([s for s in DEFAULT.planned_full_steps(40) if s < 20]) and first.steps == 20
    assert second.full_steps == len(DEFAULT.planned_full_steps(20)) and second.steps == 20


@torch.no_grad()
def test_a_short_part_of_a_two_expert_run_is_left_alone_and_said():
    pipe = tiny_wan_pipeline(two_experts=True)
    latents, text = torch.randn(1, 4, 2, 4, 4), torch.randn(1, 4, 16)
    pipe.scheduler.set_timesteps(40)
    with tap.accelerate(pipe) as handle:
        with pytest.warns(RuntimeWarning, match="a run of 10 steps is too short"):
            for index, t in enumerate(pipe.scheduler.timesteps):
                expert = pipe.transformer if index < 30 else pipe.transformer_2
                expert(hidden_states=latents, timestep=t.expand(1), encoder_hidden_states=text, return_dict=False)
        stats = handle.stats()
    assert stats.denoisers["transformer"].predicted_steps > 0
    assert (stats.denoisers["transformer_2"].predicted_steps, stats.denoisers["transformer_2"].full_steps) == (0, 10)


def test_the_bench_table_has_a_steps_column_when_several_step_counts_ran():
    records = [Record("tap-default", "full_steps=9", "tap", steps=steps, full_steps=full) for steps, full in ((8, 8.0), (20, 10.0))]
    table = markdown_table(records)
    assert table.splitlines()[0].startswith("| steps | method |")
    assert "| 8 | tap-default | full_steps=9 | 8.0 |" in table and "| 20 | tap-default | full_steps=9 | 10.0 |" in table
    assert not markdown_table(records[:1]).startswith("| steps")
