"""Fast checks of the bundled demo model: it loads offline, has the promised FLUX shape, and samples deterministically."""

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
from PIL import Image

from tap_plugins.demo import DEMO_MODEL_PATH, GlyphPipeline, load_demo_pipeline

STEPS = 3


@pytest.fixture(scope="module")
def pipe() -> GlyphPipeline:
    pipe = load_demo_pipeline()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sample(pipe: GlyphPipeline, prompt, seed: int = 0, **kwargs):
    return pipe(prompt, num_inference_steps=STEPS, generator=torch.Generator().manual_seed(seed), **kwargs).images


def test_plain_diffusion_pipeline_loads_float32():
    loaded = DiffusionPipeline.from_pretrained(DEMO_MODEL_PATH, low_cpu_mem_usage=False)
    assert isinstance(loaded, GlyphPipeline)
    assert loaded.transformer.dtype == torch.float32
    assert loaded.encoder.dtype == torch.float32


def test_flux_architecture(pipe):
    transformer = pipe.transformer
    assert isinstance(transformer, FluxTransformer2DModel)
    assert isinstance(pipe.scheduler, FlowMatchEulerDiscreteScheduler)
    assert len(transformer.transformer_blocks) + len(transformer.single_transformer_blocks) >= 8
    assert transformer.config.in_channels == 16 and transformer.config.patch_size == 1
    assert sum(transformer.config.axes_dims_rope) == transformer.config.attention_head_dim


def test_one_batched_transformer_call_per_step_with_256_image_tokens(pipe):
    calls = []
    hook = pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append((kwargs["hidden_states"].shape, kwargs["img_ids"].shape)),
        with_kwargs=True,
    )
    try:
        sample(pipe, ["A", "b"], guidance_scale=3.0, output_type="pt")
    finally:
        hook.remove()
    assert calls == [((4, 256, 16), (256, 3))] * STEPS


@pytest.mark.parametrize("output_type", ["np", "pil", "pt"])
def test_output_types(pipe, output_type):
    images = sample(pipe, ["A", " 7 "], output_type=output_type)
    if output_type == "np":
        assert isinstance(images, np.ndarray) and images.shape == (2, 64, 64, 1)
        assert images.min() >= 0.0 and images.max() <= 1.0
    elif output_type == "pil":
        assert len(images) == 2 and all(isinstance(im, Image.Image) for im in images)
        assert images[0].size == (64, 64) and images[0].mode == "L"
    else:
        assert images.shape == (2, 1, 64, 64)


def test_deterministic_given_generator(pipe):
    first = sample(pipe, "Q", seed=1, output_type="np")
    np.testing.assert_array_equal(first, sample(pipe, " Q ", seed=1, output_type="np"))
    assert not np.array_equal(first, sample(pipe, "Q", seed=2, output_type="np"))


@pytest.mark.parametrize("prompt", ["AB", "?", "é", "a b"])
def test_unknown_prompt_raises(pipe, prompt):
    with pytest.raises(ValueError, match="Unsupported prompt") as excinfo:
        pipe(prompt, num_inference_steps=1)
    assert repr(prompt) in str(excinfo.value) and "XYZ" in str(excinfo.value)


def test_weights_are_small_safetensors():
    files = [p for p in DEMO_MODEL_PATH.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 25 * 1024 * 1024
    assert {p.parent.name for p in files if p.suffix == ".safetensors"} == {"transformer", "encoder"}
    assert (DEMO_MODEL_PATH / "model_index.json").is_file()
