"""Copies and pickles of a model with tap enabled, and the advice tap gives when cache-dit joins it.

A deep copy would share tap's hooks and statistics with the original and pickle cannot store them,
so both are refused with a TAPError that says what to do; after ``tap.disable`` both work as on a
plain model. The cache-dit tests run the commands tap's refusal advises, in either order of
enabling, and check that they leave a plain pipeline.
"""

import copy
import io
import pickle
import re
from pathlib import Path

import pytest
import torch

import tap
from conftest import DEMO_INTERVAL, DEMO_STEPS, demo_image, quiet_demo, sample_flux
from tap.conflicts import CacheConflictError
from tap_plugins.demo import GlyphPipeline

STEPS, INTERVAL = DEMO_STEPS, DEMO_INTERVAL
PREDICTED = STEPS - len(range(0, STEPS, INTERVAL))
COPY_ADVICE = r"tap\.disable\(pipe\).*copy, then tap\.enable"
PICKLE_ADVICE = r"tap\.disable\(pipe\).*state_dict\(\)"
PRODUCTION = Path(__file__).resolve().parent.parent / "docs" / "production.md"


def refuse_copies(target) -> None:
    """deepcopy, pickle and torch.save of ``target`` each raise a TAPError with its advice."""
    with pytest.raises(tap.TAPError, match=COPY_ADVICE):
        copy.deepcopy(target)
    with pytest.raises(tap.TAPError, match=PICKLE_ADVICE):
        pickle.dumps(target)
    with pytest.raises(tap.TAPError, match=PICKLE_ADVICE):
        torch.save(target, io.BytesIO())


@pytest.mark.parametrize("target", ["pipeline", "transformer"])
def test_copying_a_pipeline_or_transformer_with_tap_is_refused_and_the_original_keeps_working(demo_references, target):
    _, accelerated = demo_references
    pipe = quiet_demo()
    tap.enable(pipe, interval=INTERVAL)
    demo_image(pipe)
    refuse_copies(pipe if target == "pipeline" else pipe.transformer)
    torch.testing.assert_close(demo_image(pipe), accelerated, rtol=0, atol=0)
    assert tap.stats(pipe).predicted_steps == PREDICTED


def test_after_disable_a_deep_copy_generates_the_same_image_and_takes_its_own_tap(demo_references):
    full, accelerated = demo_references
    pipe = quiet_demo()
    demo_image(pipe)  # a used pipeline: its transformer holds the hook registry its cache_context made
    tap.enable(pipe, interval=INTERVAL)
    demo_image(pipe)
    tap.disable(pipe)
    twin = copy.deepcopy(pipe)
    torch.testing.assert_close(demo_image(twin), full, rtol=0, atol=0)
    torch.testing.assert_close(demo_image(pipe), full, rtol=0, atol=0)
    tap.enable(pipe, interval=INTERVAL)
    tap.enable(twin, interval=INTERVAL)
    torch.testing.assert_close(demo_image(twin), accelerated, rtol=0, atol=0)
    assert (tap.stats(twin).steps, tap.stats(pipe).steps) == (STEPS, 0), "each copy has its own tap"


def test_after_disable_a_pipeline_pickles_and_the_unpickled_one_generates_the_same_image(demo_references):
    full, _ = demo_references
    pipe = quiet_demo()
    with tap.accelerate(pipe, interval=INTERVAL):
        demo_image(pipe)
    torch.testing.assert_close(demo_image(pickle.loads(pickle.dumps(pipe))), full, rtol=0, atol=0)


def test_a_bare_transformer_with_tap_refuses_copies_and_copies_after_disable(flux):
    tap.enable(flux, interval=INTERVAL)
    accelerated, _ = sample_flux(flux, steps=STEPS)
    refuse_copies(flux)
    again, _ = sample_flux(flux, steps=STEPS)
    torch.testing.assert_close(again, accelerated, rtol=0, atol=0)
    assert tap.stats(flux).predicted_steps == PREDICTED
    tap.disable(flux)
    full, _ = sample_flux(flux, steps=STEPS)
    buffer = io.BytesIO()
    torch.save(flux, buffer)
    buffer.seek(0)
    for twin in (copy.deepcopy(flux), pickle.loads(pickle.dumps(flux)), torch.load(buffer, weights_only=False)):
        torch.testing.assert_close(sample_flux(twin, steps=STEPS)[0], full, rtol=0, atol=0)


def test_the_production_guide_example_on_copies_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the example saves a file
    text = PRODUCTION.read_text()
    section = text[text.index("## Copies and pickling"):]
    code = re.search(r"^```python\n(.*?)^```", section, re.MULTILINE | re.DOTALL)[1]
    exec(compile(code, str(PRODUCTION), "exec"), {"__name__": "docs_example"})


@pytest.fixture
def cache_dit():
    """cache-dit, and the demo pipeline class as it was: cache-dit patches the class's ``__call__``, which a
    failing test must not leave patched for the next one."""
    module = pytest.importorskip("cache_dit")
    before = dict(vars(GlyphPipeline))
    yield module
    for name in set(vars(GlyphPipeline)) - set(before):
        delattr(GlyphPipeline, name)
    GlyphPipeline.__call__ = before["__call__"]


def enable_cache_dit(cache_dit, pipe) -> None:
    """cache-dit's DBCache on the demo transformer's two block lists (cache-dit has no adapter for the demo)."""
    transformer = pipe.transformer
    adapter = cache_dit.BlockAdapter(
        pipe=pipe, transformer=transformer, blocks=[transformer.transformer_blocks, transformer.single_transformer_blocks],
        forward_pattern=[cache_dit.ForwardPattern.Pattern_1] * 2, check_forward_pattern=True,
    )
    config = cache_dit.DBCacheConfig(Fn_compute_blocks=1, Bn_compute_blocks=0, residual_diff_threshold=0.6,
                                     max_warmup_steps=1, num_inference_steps=STEPS)
    cache_dit.enable_cache(adapter, cache_config=config)


def assert_plain(pipe, demo_references) -> None:
    """Neither cache is left: the image is computed in full, and tap enables again and accelerates as before."""
    full, accelerated = demo_references
    assert not hasattr(pipe.transformer, "_is_cached") and not hasattr(pipe.transformer, "_tap_handle")
    torch.testing.assert_close(demo_image(pipe), full, rtol=0, atol=0)
    with tap.accelerate(pipe, interval=INTERVAL):
        torch.testing.assert_close(demo_image(pipe), accelerated, rtol=0, atol=0)
        assert tap.stats(pipe).predicted_steps == PREDICTED


def test_cache_dit_enabled_before_tap_is_refused_and_the_advice_works(demo_references, cache_dit):
    pipe = quiet_demo()
    enable_cache_dit(cache_dit, pipe)
    advice = r"cache-dit \(remove it with cache_dit\.disable_cache\(pipe\)\).*then call tap\.enable again"
    with pytest.raises(CacheConflictError, match=advice):
        tap.enable(pipe, interval=INTERVAL)
    cache_dit.disable_cache(pipe)
    assert_plain(pipe, demo_references)


def test_cache_dit_enabled_after_tap_is_refused_and_the_advice_works(demo_references, cache_dit):
    pipe = quiet_demo()
    tap.enable(pipe, interval=INTERVAL)
    demo_image(pipe)
    enable_cache_dit(cache_dit, pipe)
    advice = r"cache-dit, enabled after tap .*tap first, with tap\.disable\(pipe\) then cache_dit\.disable_cache\(pipe\)"
    with pytest.raises(CacheConflictError, match=advice):
        demo_image(pipe)
    tap.disable(pipe)
    cache_dit.disable_cache(pipe)
    assert_plain(pipe, demo_references)
