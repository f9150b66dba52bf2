"""Every built-in adapter, and the generic one, on a tiny model built from a config (CPU).

Per model: bit-identical to plain diffusers when every step is computed, no block on predicted
steps, batched CFG, video token layouts, reset between generations, exact restore on disable, and
skipped blocks that return what the real block returns.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

import attrs
import pytest
import torch
from diffusers import (
    Flux2Transformer2DModel,
    FluxTransformer2DModel,
    HunyuanVideoTransformer3DModel,
    QwenImageTransformer2DModel,
    SD3Transformer2DModel,
    WanTransformer3DModel,
)

import tap
from tap.runtime import build_schedule
from conftest import sample_loop, tap_cli
from tap_plugins.adapters.generic import make_adapter

TEXT, FRAMES, SIDE = 3, 3, 4  # text tokens; video latents are FRAMES x SIDE x SIDE


def randn(generator, *shape):
    return torch.randn(*shape, generator=generator)


@attrs.frozen
class Case:
    """A tiny model, its inputs, and how a sampling loop calls it.

    ``inputs(batch, generator)`` holds the latents and the fixed conditioning; ``call`` maps them,
    the current latents and the scheduler's timestep to the transformer's keyword arguments;
    ``counted`` is a sub-module every block calls once (its calls are real block evaluations);
    ``tokens`` the image/video tokens per sample after patching.
    """

    adapter: str
    build: Callable[[], torch.nn.Module]
    inputs: Callable[[int, torch.Generator], dict]
    call: Callable[[dict, torch.Tensor, torch.Tensor], dict]
    counted: str
    tokens: int
    register: type | None = None


def qwen_image():
    return QwenImageTransformer2DModel(
        patch_size=1, in_channels=4, out_channels=4, num_layers=2, attention_head_dim=8, num_attention_heads=2,
        joint_attention_dim=16, axes_dims_rope=(2, 2, 4),
    )


def wan():
    return WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4, text_dim=16,
        freq_dim=16, ffn_dim=32, num_layers=2, rope_max_seq_len=32,
    )


def hunyuan_video(image_condition_type=None):
    return HunyuanVideoTransformer3DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=1, num_single_layers=1,
        num_refiner_layers=1, patch_size=2, patch_size_t=1, guidance_embeds=False, text_embed_dim=16,
        pooled_projection_dim=8, rope_axes_dim=(2, 2, 4), image_condition_type=image_condition_type,
    )


def sd3():
    """Block 0 is an SD3.5 dual-attention block, block 1 the ``context_pre_only`` last block."""
    return SD3Transformer2DModel(
        sample_size=8, patch_size=2, in_channels=4, num_layers=2, attention_head_dim=8, num_attention_heads=2,
        joint_attention_dim=16, caption_projection_dim=16, pooled_projection_dim=8, out_channels=4,
        pos_embed_max_size=8, dual_attention_layers=(0,),
    )


def flux2():
    return Flux2Transformer2DModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=2, attention_head_dim=8, num_attention_heads=2,
        joint_attention_dim=16, timestep_guidance_channels=16, axes_dims_rope=(2, 2, 2, 2), guidance_embeds=False,
    )


def flux():
    return FluxTransformer2DModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=2, attention_head_dim=8, num_attention_heads=2,
        joint_attention_dim=16, pooled_projection_dim=8, axes_dims_rope=(2, 2, 4),
    )


def image_ids(axes: int) -> torch.Tensor:
    ids = torch.zeros(SIDE, SIDE, axes)
    ids[..., 1], ids[..., 2] = torch.arange(SIDE)[:, None], torch.arange(SIDE)[None, :]
    return ids.reshape(-1, axes)


def text(batch, g):
    return {"encoder_hidden_states": randn(g, batch, TEXT, 16)}


def text_pooled(batch, g):
    return {**text(batch, g), "pooled_projections": randn(g, batch, 8)}


def expand(t: torch.Tensor, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    return (t / scale).expand(x.shape[0])


def per_token(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    timesteps = t.expand(x.shape[0], FRAMES, SIDE // 2, SIDE // 2).clone()
    timesteps[:, 0] = 0
    return timesteps.flatten(1)


GenericFlux = make_adapter(
    "generic-flux", ("FluxTransformer2DModel",), ("transformer_blocks", "single_transformer_blocks"),
    block_outputs=("encoder_hidden_states", "hidden_states"), timestep_argument=("timestep", 3),
)

CASES = {
    "qwen-image": Case(
        "qwen-image", qwen_image,
        lambda b, g: {"latents": randn(g, b, SIDE * SIDE, 4), **text(b, g), "text_mask": torch.ones(b, TEXT)},
        lambda c, x, t: dict(hidden_states=x, encoder_hidden_states=c["encoder_hidden_states"],
                             encoder_hidden_states_mask=c["text_mask"], timestep=expand(t, x, 1000),
                             img_shapes=[(1, SIDE, SIDE)] * x.shape[0]),
        "attn", SIDE * SIDE,
    ),
    "wan": Case(
        "wan", wan,
        lambda b, g: {"latents": randn(g, b, 4, FRAMES, SIDE, SIDE), **text(b, g)},
        lambda c, x, t: dict(hidden_states=x, timestep=expand(t, x), encoder_hidden_states=c["encoder_hidden_states"]),
        "attn1", FRAMES * (SIDE // 2) ** 2,
    ),
    "hunyuan-video": Case(
        "hunyuan-video", hunyuan_video,
        lambda b, g: {"latents": randn(g, b, 4, FRAMES, SIDE, SIDE), **text_pooled(b, g), "text_mask": torch.ones(b, TEXT)},
        lambda c, x, t: dict(hidden_states=x, timestep=expand(t, x), encoder_hidden_states=c["encoder_hidden_states"],
                             encoder_attention_mask=c["text_mask"], pooled_projections=c["pooled_projections"]),
        "attn", FRAMES * (SIDE // 2) ** 2,
    ),
    "sd3": Case(
        "sd3", sd3,
        lambda b, g: {"latents": randn(g, b, 4, 2 * SIDE, 2 * SIDE), **text_pooled(b, g)},
        lambda c, x, t: dict(hidden_states=x, encoder_hidden_states=c["encoder_hidden_states"],
                             pooled_projections=c["pooled_projections"], timestep=expand(t, x)),
        "attn", SIDE * SIDE,
    ),
    "flux2": Case(
        "flux2", flux2,
        lambda b, g: {"latents": randn(g, b, SIDE * SIDE, 4), **text(b, g)},
        lambda c, x, t: dict(hidden_states=x, encoder_hidden_states=c["encoder_hidden_states"],
                             timestep=expand(t, x, 1000), img_ids=image_ids(4), txt_ids=torch.zeros(TEXT, 4)),
        "attn", SIDE * SIDE,
    ),
    "generic-flux": Case(
        "generic-flux", flux,
        lambda b, g: {"latents": randn(g, b, SIDE * SIDE, 4), **text_pooled(b, g)},
        lambda c, x, t: dict(hidden_states=x, encoder_hidden_states=c["encoder_hidden_states"],
                             pooled_projections=c["pooled_projections"], timestep=expand(t, x, 1000),
                             img_ids=image_ids(3), txt_ids=torch.zeros(TEXT, 3)),
        "attn", SIDE * SIDE, register=GenericFlux,
    ),
}
# Wan 2.2 TI2V: a timestep per token, 0 on the first (conditioning) frame.
CASES["wan-ti2v"] = attrs.evolve(
    CASES["wan"], call=lambda c, x, t: {**CASES["wan"].call(c, x, t), "timestep": per_token(t, x)}
)
# HunyuanVideo I2V's token-replace blocks: the first frame is modulated apart.
CASES["hunyuan-video-i2v"] = attrs.evolve(CASES["hunyuan-video"], build=lambda: hunyuan_video("token_replace"))
VIDEO = ["wan", "hunyuan-video"]


class Counter:
    """Real block evaluations per sampling step: calls of ``counted`` in each block tap hooks."""

    def __init__(self, blocks, counted: str) -> None:
        self.calls, self.per_step = 0, []
        self.handles = [getattr(b, counted).register_forward_hook(self._count) for b in blocks]

    def _count(self, *_):
        self.calls += 1

    def remove(self):
        for handle in self.handles:
            handle.remove()


def sample(case: Case, model, steps=8, batch=1, seed=0, context=None, counter=None):
    """:func:`conftest.sample_loop` with the case's inputs."""
    inputs = case.inputs(batch, torch.Generator().manual_seed(seed))
    return sample_loop(model, inputs["latents"], lambda latents, t: case.call(inputs, latents, t), steps, context, counter)


@pytest.fixture(params=list(CASES))
def case(request):
    case = CASES[request.param]
    if case.register is not None:
        tap.register_adapter(case.register)
    return case


@pytest.fixture
def model(case):
    torch.manual_seed(0)
    model = case.build().eval()
    yield model
    handle = getattr(model, "_tap_handle", None)
    if handle is not None:
        handle.disable()


def enable(case, model, **overrides):
    return tap.enable(model, adapter=case.adapter, **overrides)


def test_every_step_full_is_bit_identical(case, model):
    context = "cond" if hasattr(model, "cache_context") else None  # SD3's transformer has no CacheMixin
    reference, reference_outputs = sample(case, model, batch=2, context=context)
    enable(case, model, interval=1)
    latents, outputs = sample(case, model, batch=2, context=context)
    assert torch.equal(latents, reference)
    assert all(torch.equal(a, b) for a, b in zip(outputs, reference_outputs))
    assert tap.stats(model).predicted_steps == 0


def test_predicted_steps_run_no_block_in_a_cfg_batch(case, model):
    handle = enable(case, model, interval=3)
    counter = Counter(handle.runtime.blocks, case.counted)
    latents, outputs = sample(case, model, steps=8, batch=2, counter=counter)
    counter.remove()
    blocks = len(handle.runtime.blocks)
    assert counter.per_step == [blocks if i in (0, 3, 6) else 0 for i in range(8)]
    stats = tap.stats(model)
    assert (stats.steps, stats.full_steps, stats.predicted_steps) == (8, 3, 5)
    assert (stats.blocks_run, stats.blocks_skipped) == (3 * blocks, 5 * blocks)
    assert sum(stats.candidate_share.values()) == pytest.approx(1.0)
    assert all(torch.isfinite(o).all() for o in outputs) and torch.isfinite(latents).all()


def test_batched_cfg_treats_each_sample_as_alone(case, model):
    enable(case, model, interval=3)
    batched, _ = sample(case, model, batch=2)
    model._tap_handle.reset()
    inputs = case.inputs(2, torch.Generator().manual_seed(0))
    alone = []
    for row in range(2):
        case_row = attrs.evolve(case, inputs=lambda b, g, row=row: {k: v[row : row + 1] for k, v in inputs.items()})
        alone.append(sample(case_row, model)[0])
        model._tap_handle.reset()
    torch.testing.assert_close(batched, torch.cat(alone), rtol=1e-4, atol=1e-5)


def test_state_resets_between_generations(case, model):
    enable(case, model, interval=3)
    first, _ = sample(case, model, seed=1)
    second, _ = sample(case, model, seed=1)
    assert torch.equal(first, second)
    assert tap.stats(model).steps == 8


def test_disable_restores_the_model_exactly(case, model):
    reference, _ = sample(case, model)
    modules = [model, *model.modules()]
    before = [set(vars(m)) for m in modules]
    handle = enable(case, model, interval=3)
    assert not torch.equal(sample(case, model)[0], reference)
    tap.disable(model)
    assert [set(vars(m)) for m in modules] == before
    assert not any(hasattr(m, "_diffusers_hook") or "forward" in vars(m) for m in [model, *handle.runtime.blocks])
    assert torch.equal(sample(case, model)[0], reference)


def structure(value):
    if isinstance(value, tuple):
        return tuple(structure(v) for v in value)
    return None if value is None else tuple(value.shape)


def test_skipped_blocks_return_what_blocks_return(case, model):
    """Each block's pass-through has its real output's structure; a text stream the block drops
    (SD3's last block returns None for it) may be passed through, as the transformer ignores it."""
    adapter = tap.get_adapter(case.adapter)
    seen = []

    def record(block, args, kwargs, output):
        passed = adapter.skip_output(args, kwargs, adapter.stack_input(args, kwargs))
        seen.append((structure(output), structure(passed), adapter.stack_output(output).shape))

    handles = [b.register_forward_hook(record, with_kwargs=True) for b in adapter.blocks(model)]
    sample(case, model, steps=1, batch=2)
    for handle in handles:
        handle.remove()
    assert len(seen) == len(adapter.blocks(model))
    for real, passed, image in seen:
        real, passed = (real, passed) if isinstance(real, tuple) else ((real,), (passed,))
        assert len(real) == len(passed)
        assert all(r is None or r == p for r, p in zip(real, passed))
        assert image[:2] == (2, case.tokens)


def test_probe_is_the_first_blocks_attention_input(case, model):
    """The modulated-input probe equals what the first block's attention really receives."""
    adapter = tap.get_adapter(case.adapter)
    first = adapter.blocks(model)[0]
    seen = {}

    def block_call(block, args, kwargs):
        seen["probe"] = adapter.modulated_input(block, args, kwargs)

    def attention_call(attention, args, kwargs):
        seen["attention"] = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]

    handles = [first.register_forward_pre_hook(block_call, with_kwargs=True),
               getattr(first, case.counted).register_forward_pre_hook(attention_call, with_kwargs=True)]
    sample(case, model, steps=1, batch=2)
    for handle in handles:
        handle.remove()
    assert seen["probe"].shape == (2, case.tokens, seen["probe"].shape[-1])
    torch.testing.assert_close(seen["probe"], seen["attention"], rtol=0, atol=0)


@pytest.mark.parametrize("name", VIDEO)
def test_video_models_cache_frames_times_height_times_width_tokens(name):
    case = CASES[name]
    torch.manual_seed(0)
    model = case.build().eval()
    handle = enable(case, model, interval=3)
    sample(case, model, batch=2)
    residuals = handle.runtime.states.get_state().r
    assert residuals.shape[1:3] == (2, FRAMES * (SIDE // 2) ** 2)
    handle.disable()


def test_list_plugins_json_lists_every_adapter(capsys):
    code, out, _ = tap_cli(capsys, "list-plugins", "--json")
    assert code == 0
    adapters = {name for info in json.loads(out) for name in info["registered"].get("adapter", [])}
    assert {"flux", "flux2", "hunyuan-video", "qwen-image", "sd3", "wan"} <= adapters


def test_unsupported_model_points_to_the_generic_adapter():
    with pytest.raises(tap.UnsupportedModelError) as error:
        tap.enable(torch.nn.Linear(2, 2))
    message = str(error.value)
    for expected in ("Linear", "tap list-plugins", "no ModuleList of attention blocks", "tap_plugins.adapters.generic.make_adapter", "docs/adapters.md"):
        assert expected in message


def test_generic_adapter_refuses_a_configuration_that_cannot_work():
    with pytest.raises(tap.ConfigError, match="not in block_arguments"):
        make_adapter("bad", ("X",), ("blocks",), block_arguments=("hidden_states", "temb"),
                     block_outputs=("context", "hidden_states"))
    with pytest.raises(tap.ConfigError, match="lacks the image tokens"):
        make_adapter("bad", ("X",), ("blocks",), block_outputs=("encoder_hidden_states",))
    with pytest.raises(tap.ConfigError, match="transformer_classes is empty"):
        make_adapter("bad", (), "blocks")
    assert make_adapter("ok", "X", "blocks").block_lists == ("blocks",)


def test_generic_adapter_names_a_parameter_the_blocks_lack():
    adapter = make_adapter("misnamed", ("FluxTransformer2DModel",), ("transformer_blocks",),
                           block_outputs=("context", "hidden_states"), timestep_argument=("timestep", 3))
    tap.register_adapter(adapter)
    try:
        with pytest.raises(tap.ConfigError, match="FluxTransformerBlock.forward has no parameter 'context'"):
            tap.enable(flux(), adapter="misnamed")
    finally:
        tap.unregister_adapter("misnamed")


def test_docs_examples_run():
    """Every Python example in docs/adapters.md runs as written (the generic one checks itself)."""
    page = (Path(__file__).parent.parent / "docs" / "adapters.md").read_text()
    examples = re.findall(r"```python\n(.*?)```", page, flags=re.DOTALL)
    assert any("make_adapter" in example for example in examples)
    for example in examples:
        exec(compile(example, "docs/adapters.md", "exec"), {"__name__": "docs_example"})


@pytest.mark.parametrize("preset, interval", [("flux-dev", 8), ("qwen-image", 4), ("hunyuan-video", 6)])
def test_model_presets_keep_the_papers_interval_and_full_steps_at_50_steps(preset, interval):
    planned = build_schedule(tap.TAPConfig.preset(preset)).planned_full_steps(50)
    assert len(planned) == len(range(0, 50, interval))
    assert {b - a for a, b in zip(planned[1:], planned[2:])} == {interval}
