"""What a transformer adds to the image tokens between blocks (ControlNet residuals) stays exact on predicted steps.

Calls given such inputs cache the sum of each block's own residual, so the additions are not
forecast and then added a second time. The check is exact: with the reuse predictor and constant
ControlNet residuals, a predicted step's head input minus its stack input equals the last full
step's, additions included; an adapter that caches the end-to-end residual instead fails it.
"""

from __future__ import annotations

import contextlib

import pytest
import torch

import tap
import zoo
from tap.api import resolve_adapter

CASES = zoo.cases()
CONTROLNET = {  # class -> its forward's ControlNet inputs, each given one residual
    "FluxTransformer2DModel": ("controlnet_block_samples", "controlnet_single_block_samples"),
    "ChromaTransformer2DModel": ("controlnet_block_samples", "controlnet_single_block_samples"),  # joined [text; image]
    "BriaTransformer2DModel": ("controlnet_block_samples",),  # its single-block samples fail in diffusers itself
    "SD3Transformer2DModel": ("block_controlnet_hidden_states",),
    "QwenImageTransformer2DModel": ("controlnet_block_samples",),
    "SanaTransformer2DModel": ("controlnet_block_samples",),
}
AFTER_THE_LAST_BLOCK = {"SanaTransformer2DModel"}  # the tiny case's only addition follows its last block: nothing to double


def traced(case, model, adapter: str, control: dict, **config):
    """(stack input, head input) of the first sample at steps 0 and 1, and tap's stats."""
    first = resolve_adapter(model, adapter).blocks(model)[0]
    inputs = case.inputs(torch.Generator().manual_seed(0))
    stack, head = [], []
    hooks = [
        first.register_forward_pre_hook(lambda m, args, kwargs: stack.append(kwargs.get("hidden_states", args[0] if args else None)), with_kwargs=True),
        model.norm_out.register_forward_pre_hook(lambda m, args: head.append(args[0])),
    ]
    try:
        with tap.accelerate(model, adapter=adapter, **config) as handle, torch.no_grad():
            latents = inputs["latents"]
            for step, t in enumerate((torch.tensor(1000.0), torch.tensor(900.0))):
                context = getattr(model, "cache_context", None)
                with context("cond", step_index=step, num_inference_steps=8) if context else contextlib.nullcontext():
                    model(**case.call(inputs, latents, t), **control, return_dict=False)
            stats = handle.stats()
    finally:
        for hook in hooks:
            hook.remove()
    return stack, head, stats


def control_inputs(case, model, names) -> dict:
    """One constant residual per ControlNet input, shaped like the image tokens the blocks see."""
    shapes = []
    first = resolve_adapter(model, None).blocks(model)[0]
    hook = first.register_forward_pre_hook(lambda m, args, kwargs: shapes.append(tuple(kwargs.get("hidden_states", args[0] if args else None).shape)), with_kwargs=True)
    with torch.no_grad():
        inputs = case.inputs(torch.Generator().manual_seed(0))
        model(**case.call(inputs, inputs["latents"], torch.tensor(1000.0)), return_dict=False)
    hook.remove()
    generator = torch.Generator().manual_seed(1)
    return {name: [0.5 * torch.randn(*shapes[0], generator=generator)] for name in names}


@pytest.mark.parametrize("name", sorted(set(CONTROLNET) - AFTER_THE_LAST_BLOCK))
def test_a_predicted_step_adds_the_controlnet_residuals_once(name):
    case = CASES[name]
    model = zoo.build(case)
    control = control_inputs(case, model, CONTROLNET[name])
    written = type(resolve_adapter(model, None))
    assert set(CONTROLNET[name]) <= set(written.adds_between_blocks)
    double_counting = type(f"DoubleCounting{written.__name__}", (written,), {"name": f"{written.name}-double", "adds_between_blocks": ()})
    tap.register_adapter(double_counting)
    try:
        stack, head, stats = traced(case, model, written.name, control, predictor="reuse", interval=2)
        assert (stats.full_steps, stats.predicted_steps) == (1, 1)
        torch.testing.assert_close(head[1] - stack[1], head[0] - stack[0], rtol=1e-4, atol=1e-5)
        stack, head, _ = traced(case, model, double_counting.name, control, predictor="reuse", interval=2)
        assert not torch.allclose(head[1] - stack[1], head[0] - stack[0], rtol=1e-4, atol=1e-3)
    finally:
        tap.unregister_adapter(double_counting.name)


@pytest.mark.parametrize("name", sorted(CONTROLNET))
def test_every_step_computed_is_exact_with_controlnet_residuals(name):
    case = CASES[name]
    model = zoo.build(case)
    control = control_inputs(case, model, CONTROLNET[name])
    inputs = case.inputs(torch.Generator().manual_seed(0))
    with torch.no_grad():
        plain = model(**case.call(inputs, inputs["latents"], torch.tensor(1000.0)), **control, return_dict=False)[0]
        with tap.accelerate(model, interval=1):
            ours = model(**case.call(inputs, inputs["latents"], torch.tensor(1000.0)), **control, return_dict=False)[0]
    torch.testing.assert_close(ours, plain, rtol=0, atol=0)
