"""The runtime on a tiny FLUX: identity, skipped blocks, stats, resets, CFG contexts, errors, disable."""

import pytest
import torch

import tap
from conftest import BlockCounter, flux_inputs, sample_flux, tiny_flux


def test_every_step_full_is_bit_identical(flux):
    reference, reference_outputs = sample_flux(flux)
    tap.enable(flux, interval=1)
    latents, outputs = sample_flux(flux)
    assert torch.equal(latents, reference)
    assert all(torch.equal(a, b) for a, b in zip(outputs, reference_outputs))
    assert tap.stats(flux).predicted_steps == 0


@pytest.mark.parametrize("probe", ["modulated-input", "first-block"])
def test_every_step_full_is_bit_identical_for_each_probe(flux, probe):
    reference, _ = sample_flux(flux, batch=2)
    tap.enable(flux, interval=1, probe=probe)
    latents, _ = sample_flux(flux, batch=2)
    assert torch.equal(latents, reference)


@pytest.mark.parametrize(
    "probe, orders, blocks_per_predicted_step",
    [("modulated-input", (1, 2), 0), ("first-block", (1, 2), 1), ("first-block", (1,), 0)],
    ids=["modulated-input", "first-block", "one-candidate-never-probes"],
)
def test_predicted_steps_run_no_block(flux, probe, orders, blocks_per_predicted_step):
    tap.enable(flux, interval=3, warmup=1, probe=probe, orders=orders)
    counter = BlockCounter(flux)
    sample_flux(flux, steps=12, counter=counter)
    counter.remove()
    full = [0, 3, 6, 9]
    assert [i for i, calls in enumerate(counter.per_step) if calls == 3] == full
    assert all(calls == blocks_per_predicted_step for i, calls in enumerate(counter.per_step) if i not in full)
    stats = tap.stats(flux)
    assert (stats.steps, stats.full_steps, stats.predicted_steps) == (12, 4, 8)
    assert stats.blocks_skipped == 8 * (3 - blocks_per_predicted_step)
    assert stats.blocks_run == 4 * 3 + 8 * blocks_per_predicted_step
    assert sum(stats.candidate_share.values()) == pytest.approx(1.0)


def test_bench_counts_a_step_full_only_when_every_block_ran(flux):
    from tap.cli.bench import BlockCounter as BenchCounter

    blocks = [*flux.transformer_blocks, *flux.single_transformer_blocks]
    tap.enable(flux, interval=3, probe="first-block", orders=(1, 2))  # predicted steps run block 0
    counter = BenchCounter({flux: blocks})
    sample_flux(flux, steps=12)
    counter.remove()
    assert counter.transformer_calls == 12 and counter.full_calls == 4 and counter.full_steps(12) == 4
    assert counter.calls == 4 * 3 + 8 * 1


def test_state_resets_between_generations(flux):
    tap.enable(flux, interval=3)
    first, _ = sample_flux(flux, seed=1)
    second, _ = sample_flux(flux, seed=1)
    assert torch.equal(first, second)
    assert tap.stats(flux).steps == 12  # the second generation's, not both


def test_shape_change_and_explicit_reset_start_new_generations(flux):
    handle = tap.enable(flux, interval=3)
    sample_flux(flux, steps=5)
    sample_flux(flux, steps=12, batch=2)  # new batch size: new generation although t starts lower
    assert tap.stats(flux).steps == 12
    reference, _ = sample_flux(flux, steps=12)
    sample_flux(flux, steps=4)
    handle.reset()
    assert tap.stats(flux).steps == 4  # the ended generation's statistics stay readable
    again, _ = sample_flux(flux, steps=12)
    assert torch.equal(reference, again)
    handle.reset_stats()
    assert tap.stats(flux).steps == 0 and tap.stats(flux).blocks_run == 0


def test_tap_changes_predicted_steps_only(flux):
    reference, reference_outputs = sample_flux(flux)
    tap.enable(flux, interval=3)
    _, outputs = sample_flux(flux)
    assert [torch.equal(a, b) for a, b in zip(outputs, reference_outputs)][:2] == [True, False]
    assert all(torch.isfinite(o).all() for o in outputs)


def test_cond_and_uncond_contexts_keep_separate_state():
    def run(contexts):
        model = tiny_flux()
        tap.enable(model, interval=3)
        inputs = {name: flux_inputs(seed=seed) for name, seed in contexts}
        from diffusers import FlowMatchEulerDiscreteScheduler

        scheduler = FlowMatchEulerDiscreteScheduler()
        scheduler.set_timesteps(9)
        outputs = {name: [] for name, _ in contexts}
        with torch.no_grad():
            for t in scheduler.timesteps:
                for name, _ in contexts:
                    x = inputs[name]
                    with model.cache_context(name):
                        out = model(hidden_states=x["latents"], encoder_hidden_states=x["encoder_hidden_states"],
                                    pooled_projections=x["pooled_projections"], timestep=(t / 1000).expand(1),
                                    img_ids=x["img_ids"], txt_ids=x["txt_ids"], return_dict=False)[0]
                    outputs[name].append(out)
        stats = tap.stats(model)
        tap.disable(model)
        return outputs, stats

    both, stats = run([("cond", 1), ("uncond", 2)])
    cond_alone, _ = run([("cond", 1)])
    uncond_alone, _ = run([("uncond", 2)])
    assert all(torch.equal(a, b) for a, b in zip(both["cond"], cond_alone["cond"]))
    assert all(torch.equal(a, b) for a, b in zip(both["uncond"], uncond_alone["uncond"]))
    assert set(stats.contexts) == {"cond", "uncond"} and stats.steps == 18


def test_exception_mid_generation_leaves_clean_state(flux):
    handle = tap.enable(flux, interval=3)
    reference, _ = sample_flux(flux)
    sample_flux(flux, steps=5)  # cache filled, mid-generation
    inputs = flux_inputs()
    with torch.no_grad(), pytest.raises(RuntimeError):
        flux(hidden_states=inputs["latents"], encoder_hidden_states=inputs["encoder_hidden_states"][..., :3],
             pooled_projections=inputs["pooled_projections"], timestep=torch.full((1,), 0.01),
             img_ids=inputs["img_ids"], txt_ids=inputs["txt_ids"])
    states = handle.runtime.states.states().values()
    assert all(state.step == -1 and state.r is None and state.h is None for state in states)  # generation ended, cache dropped
    assert tap.stats(flux).steps == 1  # the failed call's own generation (its timestep rose): counted, then ended
    again, _ = sample_flux(flux)
    assert torch.equal(reference, again)


def test_disable_restores_the_model_exactly(flux):
    reference, _ = sample_flux(flux)
    before = dict(vars(flux)), {name: dict(vars(m)) for name, m in flux.named_modules()}
    tap.enable(flux, interval=3)
    sample_flux(flux)
    tap.disable(flux)
    after = dict(vars(flux)), {name: dict(vars(m)) for name, m in flux.named_modules()}
    assert before[0].keys() == after[0].keys()
    assert all(before[1][name].keys() == after[1][name].keys() for name in before[1])
    latents, _ = sample_flux(flux)
    assert torch.equal(latents, reference)


def test_context_manager_enables_then_restores(flux):
    reference, _ = sample_flux(flux)
    with tap.accelerate(flux, interval=3):
        accelerated, _ = sample_flux(flux)
    assert not torch.equal(accelerated, reference)
    assert not hasattr(flux, "_tap_handle") and not hasattr(flux, "_diffusers_hook")
    assert torch.equal(sample_flux(flux)[0], reference)


def test_enabling_twice_is_refused(flux):
    tap.enable(flux)
    with pytest.raises(tap.AlreadyEnabledError, match="already enabled"):
        tap.enable(flux)


def test_invalid_config_is_refused_before_patching(flux):
    with pytest.raises(tap.ConfigError, match="interval"):
        tap.enable(flux, interval=0)
    with pytest.raises(tap.ConfigError, match="'nope'.*registered probes"):
        tap.enable(flux, probe="nope")
    with pytest.raises(tap.ConfigError, match="unknown TAPConfig fields"):
        tap.enable(flux, intervall=4)
    assert not hasattr(flux, "_diffusers_hook") and not hasattr(flux, "_tap_handle")


def test_probe_refresh_schedule_places_full_steps_by_probe_error(flux):
    reference, _ = sample_flux(flux, steps=16)
    strict = tap.enable(flux, schedule="probe-refresh", schedule_options={"threshold": 1e-9, "min_gap": 2, "max_gap": 6})
    sample_flux(flux, steps=16)
    assert tap.stats(flux).full_steps == 8  # every error exceeds 1e-9: a full step every min_gap steps
    strict.disable()
    with tap.accelerate(flux, schedule="probe-refresh", schedule_options={"threshold": 1e9, "min_gap": 2, "max_gap": 5}) as lax:
        sample_flux(flux, steps=16)
        assert lax.stats().full_steps == 4  # no error is that large: a full step every max_gap steps (0, 5, 10, 15)
    with tap.accelerate(flux, schedule="probe-refresh", selector="fixed", schedule_options={"threshold": 0.2}):
        latents, _ = sample_flux(flux, steps=16)  # probes although the fixed selector would not
    assert torch.isfinite(latents).all() and not torch.equal(latents, reference)


def test_statistics_survive_the_pipeline_end_reset_and_caches_are_freed(flux):
    from diffusers.hooks import HookRegistry

    handle = tap.enable(flux, interval=3)
    reference, _ = sample_flux(flux)
    HookRegistry.check_if_exists_or_initialize(flux).reset_stateful_hooks()  # what a pipeline does when it ends
    stats = tap.stats(flux)
    assert (stats.steps, stats.full_steps) == (12, 4) and stats.cache_bytes > 0
    assert all(state.r is None for state in handle.runtime.states.states().values())
    again, _ = sample_flux(flux)
    assert torch.equal(again, reference) and tap.stats(flux).steps == 12


@pytest.mark.parametrize("context", [None, ""])
def test_calls_without_a_named_context_are_counted_as_default(flux, context):
    tap.enable(flux, interval=3)
    sample_flux(flux, steps=4)
    assert tap.stats(flux).contexts == ("default",)
    tap.disable(flux)
    tap.enable(flux, interval=3)
    with flux.cache_context(context):
        sample_flux(flux, steps=4)
    assert tap.stats(flux).contexts == ("default",)


def test_disabling_a_handle_twice_does_nothing_the_second_time(flux):
    reference, _ = sample_flux(flux, steps=4)
    handle = tap.enable(flux, interval=2)
    handle.disable()
    handle.disable()
    with tap.accelerate(flux, interval=2) as inner:
        inner.disable()  # the context manager's own disable then does nothing
    torch.testing.assert_close(sample_flux(flux, steps=4)[0], reference, rtol=0, atol=0)
    with pytest.raises(tap.TAPError, match="tap is not enabled"):
        tap.disable(flux)
