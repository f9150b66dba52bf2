"""tap with torch.compile: regional, in place and wrapped, in either order with tap.enable.

The compiled regions are the blocks' bodies; tap's hooks stay eager, so they cause no graph break
and no recompilation after the first generation, and the output equals eager tap.
"""

import shutil

import pytest
import torch
import torch._dynamo.testing
from torch._dynamo.utils import counters

import tap
from tap.api import handle_of, unwrap
from tap.hooks import block_hooks
from tap_plugins.demo import load_demo_pipeline

STEPS, INTERVAL = 8, 3


def generate(pipe):
    return pipe(["A", "g"], num_inference_steps=STEPS, generator=torch.Generator().manual_seed(0), output_type="pt").images


def compile_transformer(pipe, how: str, backend):
    """Compile the pipeline's transformer as a user would."""
    if how == "regional":
        pipe.transformer.compile_repeated_blocks(backend=backend)
    elif how == "in-place":
        pipe.transformer.compile(backend=backend)
    else:
        pipe.transformer = torch.compile(pipe.transformer, backend=backend)


@pytest.fixture(scope="module")
def eager_tap():
    pipe = load_demo_pipeline()
    pipe.set_progress_bar_config(disable=True)
    with tap.accelerate(pipe, interval=INTERVAL):
        return generate(pipe)


@pytest.fixture
def pipe():
    pipe = load_demo_pipeline()
    pipe.set_progress_bar_config(disable=True)
    torch._dynamo.reset()
    counters.clear()
    yield pipe
    torch._dynamo.reset()


@pytest.mark.parametrize("order", ["compile-first", "tap-first"])
@pytest.mark.parametrize("how", ["regional", "in-place", "wrapper"])
def test_compiled_tap_equals_eager_tap_without_graph_breaks_or_recompiles(pipe, eager_tap, how, order):
    backend = torch._dynamo.testing.CompileCounterWithBackend("aot_eager")
    if order == "compile-first":
        compile_transformer(pipe, how, backend)
        tap.enable(pipe, interval=INTERVAL)
    else:
        tap.enable(pipe, interval=INTERVAL)
        compile_transformer(pipe, how, backend)
    first = generate(pipe)
    compiled_frames, first_breaks = backend.frame_count, sum(counters["graph_break"].values())
    second = generate(pipe)

    assert compiled_frames > 0, "the blocks' bodies were compiled"
    assert backend.frame_count == compiled_frames, "no recompilation after the first generation"
    assert sum(counters["graph_break"].values()) == first_breaks, "no graph break after the first generation"
    # A wrapper set as pipe.transformer after tap.enable is first called before tap can take it over:
    # that one call breaks the graph at tap's hook, once.
    assert first_breaks == (1 if (how, order) == ("wrapper", "tap-first") else 0), dict(counters["graph_break"])
    torch.testing.assert_close(first, eager_tap, rtol=0, atol=1e-5)
    torch.testing.assert_close(second, eager_tap, rtol=0, atol=1e-5)
    stats = tap.stats(pipe)
    assert stats.predicted_steps == STEPS - len(range(0, STEPS, INTERVAL))
    hooks = block_hooks(handle_of(pipe).runtime.blocks)
    assert all(hook.body is not None for hook in hooks)


@pytest.mark.parametrize("how", ["regional", "in-place", "wrapper"])
def test_disable_leaves_the_model_compiled_as_asked(pipe, how):
    plain = generate(pipe)
    compile_transformer(pipe, how, "aot_eager")
    tap.enable(pipe, interval=INTERVAL)
    generate(pipe)
    tap.disable(pipe)

    transformer = pipe.transformer
    if how == "regional":
        assert all(block._compiled_call_impl is not None for block in transformer.transformer_blocks)
    elif how == "in-place":
        assert transformer._compiled_call_impl is not None
    else:
        assert "forward" in vars(transformer) and transformer.forward.__name__ != "__call__"
    assert not hasattr(unwrap(transformer), "_tap_handle")
    assert "compile" not in vars(unwrap(transformer))
    torch.testing.assert_close(generate(pipe), plain, rtol=0, atol=1e-5)


def test_a_compile_wrapper_tap_cannot_see_is_refused_with_the_order_that_works(flux):
    from conftest import sample_flux

    tap.enable(flux)
    compiled = torch.compile(flux, backend="eager")
    with pytest.raises(tap.TAPError, match=r"tap.enable\(torch.compile\(transformer\)\)"):
        sample_flux(compiled, steps=2)


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None, reason="inductor needs a C++ compiler")
def test_regional_inductor_compile_matches_eager_tap(pipe, eager_tap):
    tap.enable(pipe, interval=INTERVAL)
    pipe.transformer.compile_repeated_blocks()
    torch.testing.assert_close(generate(pipe), eager_tap, rtol=0, atol=1e-4)
