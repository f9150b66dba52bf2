"""tap with what users stack on a pipeline: CPU offloading, layerwise casting, two-expert Wan 2.2,
other caches, and generations that were interrupted."""

import pytest
import torch
from accelerate import cpu_offload
from diffusers import FirstBlockCacheConfig, PyramidAttentionBroadcastConfig, TaylorSeerCacheConfig
from diffusers.hooks import apply_group_offloading

import tap
from conftest import DEMO_INTERVAL, DEMO_STEPS, demo_image, quiet_demo
from tap.conflicts import CacheConflictError
from tiny_pipelines import tiny_wan_pipeline

STEPS, INTERVAL = DEMO_STEPS, DEMO_INTERVAL
PREDICTED = STEPS - len(range(0, STEPS, INTERVAL))


def model_offload(pipe):
    pipe.enable_model_cpu_offload(device="cpu")


def group_offload(pipe):
    apply_group_offloading(pipe.transformer, onload_device=torch.device("cpu"), offload_device=torch.device("cpu"),
                           offload_type="block_level", num_blocks_per_group=1)


def sequential_offload(pipe):
    """accelerate's sequential offload of the transformer alone (the demo's glyph encoder keeps its table in place)."""
    cpu_offload(pipe.transformer, execution_device=torch.device("cpu"))


OFFLOADS = {"model": model_offload, "group": group_offload, "sequential": sequential_offload}


@pytest.mark.parametrize("order", ["offload-first", "tap-first"])
@pytest.mark.parametrize("offload", sorted(OFFLOADS))
def test_offloading_keeps_tap_on_every_generation_and_disable_keeps_offloading(demo_references, offload, order):
    full, accelerated = demo_references
    pipe = quiet_demo()
    if order == "offload-first":
        OFFLOADS[offload](pipe)
        tap.enable(pipe, interval=INTERVAL)
    else:
        tap.enable(pipe, interval=INTERVAL)
        OFFLOADS[offload](pipe)
    for _ in range(3):
        torch.testing.assert_close(demo_image(pipe), accelerated, rtol=0, atol=1e-6)
        assert tap.stats(pipe).predicted_steps == PREDICTED
    tap.disable(pipe)
    torch.testing.assert_close(demo_image(pipe), full, rtol=0, atol=1e-6)
    if offload == "model":
        assert hasattr(pipe.transformer, "_hf_hook"), "accelerate's offload hook is still there"
    elif offload == "sequential":
        assert hasattr(pipe.transformer.transformer_blocks[0].norm1.linear, "_hf_hook")
    else:
        assert pipe.transformer.transformer_blocks[0]._diffusers_hook.get_hook("group_offloading") is not None


@pytest.mark.parametrize("order", ["casting-first", "tap-first"])
def test_layerwise_casting_composes_with_tap(order):
    def cast(pipe):
        pipe.transformer.enable_layerwise_casting(storage_dtype=torch.bfloat16, compute_dtype=torch.float32)

    reference_pipe = quiet_demo()
    cast(reference_pipe)
    with tap.accelerate(reference_pipe, interval=INTERVAL):
        expected = demo_image(reference_pipe)
    pipe = quiet_demo()
    if order == "casting-first":
        cast(pipe)
        tap.enable(pipe, interval=INTERVAL)
    else:
        tap.enable(pipe, interval=INTERVAL)
        cast(pipe)
    torch.testing.assert_close(demo_image(pipe), expected, rtol=0, atol=1e-6)
    assert tap.stats(pipe).predicted_steps == PREDICTED
    tap.disable(pipe)
    assert pipe.transformer.transformer_blocks[0].attn.to_q.weight.dtype == torch.bfloat16


class ExpertCounter:
    """Real block evaluations per expert (calls of each block's cross-attention)."""

    def __init__(self, pipe):
        self.calls = {"transformer": 0, "transformer_2": 0}
        for name in self.calls:
            for block in getattr(pipe, name).blocks:
                block.attn2.register_forward_hook(lambda *_, name=name: self.calls.__setitem__(name, self.calls[name] + 1))


def wan(pipe, steps):
    return pipe("a cat", num_inference_steps=steps, num_frames=5, height=16, width=16, guidance_scale=1.0,
                generator=torch.Generator().manual_seed(0), output_type="np").frames


def test_every_expert_of_a_two_expert_pipeline_is_accelerated_with_its_own_state():
    pipe = tiny_wan_pipeline(two_experts=True)
    pipe.set_progress_bar_config(disable=True)
    steps = 12  # boundary 0.5: the first expert takes the noisy steps, the second the rest
    counter = ExpertCounter(pipe)
    full = wan(pipe, steps)
    full_calls = dict(counter.calls)
    counter.calls.update(transformer=0, transformer_2=0)

    handle = tap.enable(pipe, interval=3, final_full=1)
    first = wan(pipe, steps)
    stats = tap.stats(pipe)
    assert set(handle.denoisers) == {"transformer", "transformer_2"}
    one, two = stats.denoisers["transformer"], stats.denoisers["transformer_2"]
    assert one.steps + two.steps == steps and one.steps > 0 and two.steps > 0
    # each expert runs its first call in full (nothing cached), then every 3rd step of the whole run,
    # and the very last step (final_full counts from the pipeline's step count)
    handover = one.steps
    expected_two = {handover, *(s for s in range(handover, steps) if s % 3 == 0), steps - 1}
    assert two.full_steps == len(expected_two)
    assert one.full_steps == len({0, *(s for s in range(handover) if s % 3 == 0)})
    assert counter.calls["transformer_2"] == two.full_steps * len(pipe.transformer_2.blocks)
    assert stats.blocks_run == one.blocks_run + two.blocks_run
    total = full_calls["transformer"] + full_calls["transformer_2"]
    assert stats.blocks_avoided == pytest.approx(1 - (counter.calls["transformer"] + counter.calls["transformer_2"]) / total)
    assert abs(first - full).max() > 0
    second = wan(pipe, steps)
    assert (second == first).all(), "the next generation is the same: state did not leak across the hand-over"
    tap.disable(pipe)
    assert (wan(pipe, steps) == full).all()
    assert not any(name.startswith("tap") for name in pipe.transformer_2._diffusers_hook.hooks)


CACHES = {
    "FirstBlockCache": FirstBlockCacheConfig(threshold=0.6),
    "TaylorSeerCache": TaylorSeerCacheConfig(cache_interval=3),
    "PyramidAttentionBroadcast": PyramidAttentionBroadcastConfig(spatial_attention_block_skip_range=2, current_timestep_callback=lambda: 500),
}


@pytest.mark.parametrize("cache", sorted(CACHES))
def test_another_cache_is_refused_before_tap_and_at_the_first_call_after(cache):
    pipe = quiet_demo()
    pipe.transformer.enable_cache(CACHES[cache])
    with pytest.raises(CacheConflictError, match=rf"{cache}Config.*disable_cache\(\)"):
        tap.enable(pipe)
    assert not hasattr(pipe.transformer, "_tap_handle")
    pipe.transformer.disable_cache()

    tap.enable(pipe, interval=INTERVAL)
    demo_image(pipe)
    pipe.transformer.enable_cache(CACHES[cache])
    with pytest.raises(CacheConflictError, match="disable_cache"):
        demo_image(pipe)


def test_cache_dit_is_refused():
    pipe = quiet_demo()
    pipe.transformer._is_cached = True  # what cache_dit.enable_cache marks
    with pytest.raises(CacheConflictError, match="cache-dit"):
        tap.enable(pipe)


def test_a_pipeline_without_a_transformer_is_a_tap_error():
    pipe = quiet_demo()
    pipe.transformer = None
    with pytest.raises(tap.TAPError, match="no transformer"):
        tap.enable(pipe)
    with pytest.raises(tap.TAPError, match="pipeline or a transformer"):
        tap.enable(None)


@pytest.mark.parametrize("fail_at", [0, 1, 4])
def test_a_generation_interrupted_at_any_step_does_not_touch_the_next(demo_references, fail_at):
    _, accelerated = demo_references
    pipe = quiet_demo()
    tap.enable(pipe, interval=INTERVAL)
    step = pipe.scheduler.step
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == fail_at + 1:
            raise KeyboardInterrupt
        return step(*args, **kwargs)

    pipe.scheduler.step = failing
    with pytest.raises(KeyboardInterrupt):
        demo_image(pipe, "B")
    pipe.scheduler.step = step
    torch.testing.assert_close(demo_image(pipe), accelerated, rtol=0, atol=0)
    assert tap.stats(pipe).steps == STEPS


class PoisonedReuse(tap.Predictor):
    """Reuse, with NaN for the first token: a broken third-party predictor."""

    name = "poisoned-reuse"
    history = 1
    exact_degree = 0

    def _predict(self, steps, values, target):
        predicted = values[-1].clone()
        predicted[..., 0, :] = float("nan")
        return predicted


def test_a_non_finite_prediction_is_computed_in_full_counted_and_reported_once(demo_references):
    full, _ = demo_references
    tap.register_predictor(PoisonedReuse)
    pipe = quiet_demo()
    tap.enable(pipe, predictor="poisoned-reuse", orders=(0,), interval=INTERVAL)
    with pytest.warns(RuntimeWarning, match="poisoned-reuse.*non-finite") as caught:
        image = demo_image(pipe)
    assert len([w for w in caught if "non-finite" in str(w.message)]) == 1
    torch.testing.assert_close(image, full, rtol=0, atol=0)
    stats = tap.stats(pipe)
    assert stats.fallbacks == PREDICTED and stats.full_steps == STEPS and stats.predicted_steps == 0
    assert stats.non_finite == {"poisoned-reuse": PREDICTED}


@pytest.mark.parametrize("selector", ["token", "fixed"])
def test_a_non_finite_candidate_loses_the_selection_at_its_tokens_and_the_family_keeps_predicting(selector):
    """taylor order 1 with a predictor that is NaN at one token: that token takes taylor, nothing falls back."""
    tap.register_predictor(PoisonedReuse)
    pipe = quiet_demo()
    taylor = tap.Candidate(tap.get_predictor("taylor", order=1))
    family = (tap.Candidate(PoisonedReuse()), taylor) if selector == "fixed" else (taylor, tap.Candidate(PoisonedReuse()))
    with pytest.warns(RuntimeWarning, match="poisoned-reuse.*non-finite") as caught:
        with tap.accelerate(pipe, candidates=family, selector=selector, interval=INTERVAL) as handle:
            image = demo_image(pipe)
            stats = handle.stats()
    assert len([w for w in caught if "non-finite" in str(w.message)]) == 1
    assert torch.isfinite(image).all()
    assert (stats.fallbacks, stats.predicted_steps) == (0, PREDICTED)
    assert stats.non_finite == {"poisoned-reuse": PREDICTED}
    with tap.accelerate(pipe, candidates=(taylor,), interval=INTERVAL):
        only_taylor = demo_image(pipe)
    if selector == "fixed":  # fixed picks the first candidate: every token but the poisoned one keeps reuse
        assert not torch.equal(image, only_taylor)
    assert "non-finite predictions: poisoned-reuse in" in str(stats)


def test_bench_counts_the_blocks_and_full_steps_of_both_experts():
    from tap.cli.bench import BlockCounter

    pipe = tiny_wan_pipeline(two_experts=True)
    pipe.set_progress_bar_config(disable=True)
    experts = ExpertCounter(pipe)
    counter = BlockCounter({pipe.transformer: list(pipe.transformer.blocks), pipe.transformer_2: list(pipe.transformer_2.blocks)})
    with tap.accelerate(pipe, interval=3):
        wan(pipe, 12)
        stats = tap.stats(pipe)
    counter.remove()
    assert counter.calls == sum(experts.calls.values()) == stats.blocks_run
    assert counter.full_steps(12) == stats.full_steps
