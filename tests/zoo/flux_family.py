"""Zoo cases: see zoo/__init__.py.

FLUX.1 and its relatives (Chroma, Bria, Bria FIBO, LongCat-Image, Ovis-Image), FLUX.2 and FLUX.3,
AuraFlow, HunyuanImage 2.1 and HiDream-I1. Configs and inputs follow diffusers' own model tests,
shrunk to a 4x4 image (16 tokens) and a few text tokens.
"""

from __future__ import annotations

import diffusers
import torch

from zoo import ZooCase

BATCH = 2


def _randn(generator: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=generator)


def _batched(t: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """The scheduler's timestep as a batch-sized 1-d tensor, times ``scale``."""
    return (t.float() * scale).expand(BATCH)


def _flux_ids(height: int, width: int, text: int) -> tuple[torch.Tensor, torch.Tensor]:
    """FLUX.1-style position ids: image (row, column) in axes 1 and 2, text ids all zero."""
    img_ids = torch.zeros(height, width, 3)
    img_ids[..., 1] = torch.arange(height)[:, None]
    img_ids[..., 2] = torch.arange(width)[None, :]
    return img_ids.reshape(-1, 3), torch.zeros(text, 3)


# -- FLUX.1 ------------------------------------------------------------------------------------------


def _flux_inputs(generator):
    img_ids, txt_ids = _flux_ids(4, 4, 8)
    return {
        "latents": _randn(generator, BATCH, 16, 4),
        "encoder_hidden_states": _randn(generator, BATCH, 8, 32),
        "pooled_projections": _randn(generator, BATCH, 32),
        "img_ids": img_ids,
        "txt_ids": txt_ids,
    }


def _flux_call(inputs, latents, t):
    return {
        "hidden_states": latents, "encoder_hidden_states": inputs["encoder_hidden_states"],
        "pooled_projections": inputs["pooled_projections"], "timestep": _batched(t, 1 / 1000),
        "img_ids": inputs["img_ids"], "txt_ids": inputs["txt_ids"],
    }


FLUX = ZooCase(
    name="FluxTransformer2DModel",
    build=lambda: diffusers.FluxTransformer2DModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=2, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=(4, 4, 8),
    ),
    inputs=_flux_inputs,
    call=_flux_call,
)


# -- FLUX.2 ------------------------------------------------------------------------------------------


def _flux2_inputs(generator):
    image_ids = torch.cartesian_prod(torch.arange(1), torch.arange(4), torch.arange(4), torch.arange(1))
    text_ids = torch.cartesian_prod(torch.arange(1), torch.arange(1), torch.arange(1), torch.arange(8))
    return {
        "latents": _randn(generator, BATCH, 16, 4),
        "encoder_hidden_states": _randn(generator, BATCH, 8, 32),
        "img_ids": image_ids,
        "txt_ids": text_ids,
    }


FLUX2 = ZooCase(
    name="Flux2Transformer2DModel",
    build=lambda: diffusers.Flux2Transformer2DModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=2, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, timestep_guidance_channels=256, axes_dims_rope=(4, 4, 4, 4),
    ),
    inputs=_flux2_inputs,
    call=lambda inputs, latents, t: {
        "hidden_states": latents, "encoder_hidden_states": inputs["encoder_hidden_states"],
        "timestep": _batched(t, 1 / 1000), "guidance": torch.full((BATCH,), 3.5),
        "img_ids": inputs["img_ids"], "txt_ids": inputs["txt_ids"],
    },
)


# -- FLUX.1 relatives --------------------------------------------------------------------------------


def _relative_inputs(generator, text_width=32, **extra):
    img_ids, txt_ids = _flux_ids(4, 4, 8)
    return {
        "latents": _randn(generator, BATCH, 16, 4),
        "encoder_hidden_states": _randn(generator, BATCH, 8, text_width),
        "img_ids": img_ids,
        "txt_ids": txt_ids,
        **{name: make(generator) for name, make in extra.items()},
    }


def _relative_call(scale, **extra):
    """FLUX.1-style keyword arguments, the timestep times ``scale``, plus ``extra`` inputs by name."""

    def call(inputs, latents, t):
        return {
            "hidden_states": latents, "encoder_hidden_states": inputs["encoder_hidden_states"],
            "timestep": _batched(t, scale), "img_ids": inputs["img_ids"], "txt_ids": inputs["txt_ids"],
            **{name: inputs[key] for name, key in extra.items()},
        }

    return call


CHROMA = ZooCase(
    name="ChromaTransformer2DModel",
    build=lambda: diffusers.ChromaTransformer2DModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=2, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, axes_dims_rope=(4, 4, 8), approximator_num_channels=8,
        approximator_hidden_dim=16, approximator_layers=1,
    ),
    inputs=_relative_inputs,
    call=_relative_call(1 / 1000),
)

BRIA = ZooCase(
    name="BriaTransformer2DModel",
    build=lambda: diffusers.BriaTransformer2DModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=2, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=None, axes_dims_rope=(0, 8, 8),
    ),
    inputs=_relative_inputs,
    call=_relative_call(1.0),
)

BRIA_FIBO = ZooCase(
    name="BriaFiboTransformer2DModel",
    build=lambda: diffusers.BriaFiboTransformer2DModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=2, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, text_encoder_dim=16, pooled_projection_dim=None,
        axes_dims_rope=(0, 8, 8),
    ),
    inputs=lambda generator: _relative_inputs(generator, text_encoder_layers=lambda g: [_randn(g, BATCH, 8, 16) for _ in range(3)]),
    call=_relative_call(1.0, text_encoder_layers="text_encoder_layers"),
)

LONGCAT_IMAGE = ZooCase(
    name="LongCatImageTransformer2DModel",
    build=lambda: diffusers.LongCatImageTransformer2DModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=2, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=(4, 4, 8),
    ),
    inputs=_relative_inputs,
    call=_relative_call(1 / 1000),
)

OVIS_IMAGE = ZooCase(
    name="OvisImageTransformer2DModel",
    build=lambda: diffusers.OvisImageTransformer2DModel(
        patch_size=1, in_channels=4, out_channels=4, num_layers=1, num_single_layers=2, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, axes_dims_rope=(4, 4, 8),
    ),
    inputs=_relative_inputs,
    call=_relative_call(1 / 1000),
)


# -- AuraFlow, HunyuanImage 2.1, HiDream-I1 ----------------------------------------------------------

AURA_FLOW = ZooCase(
    name="AuraFlowTransformer2DModel",
    build=lambda: diffusers.AuraFlowTransformer2DModel(
        sample_size=8, patch_size=2, in_channels=4, num_mmdit_layers=1, num_single_dit_layers=2,
        attention_head_dim=8, num_attention_heads=4, caption_projection_dim=32, joint_attention_dim=32,
        out_channels=4, pos_embed_max_size=64,
    ),
    inputs=lambda generator: {
        "latents": _randn(generator, BATCH, 4, 8, 8),
        "encoder_hidden_states": _randn(generator, BATCH, 8, 32),
    },
    call=lambda inputs, latents, t: {
        "hidden_states": latents, "encoder_hidden_states": inputs["encoder_hidden_states"],
        "timestep": _batched(t, 1 / 1000),
    },
)

HUNYUAN_IMAGE = ZooCase(
    name="HunyuanImageTransformer2DModel",
    build=lambda: diffusers.HunyuanImageTransformer2DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=16, num_layers=1,
        num_single_layers=2, num_refiner_layers=1, patch_size=(1, 1), text_embed_dim=32, rope_axes_dim=(8, 8),
    ),
    inputs=lambda generator: {
        "latents": _randn(generator, BATCH, 4, 4, 4),
        "encoder_hidden_states": _randn(generator, BATCH, 8, 32),
        "encoder_attention_mask": torch.tensor([[1] * 8, [1] * 5 + [0] * 3]),
    },
    call=lambda inputs, latents, t: {
        "hidden_states": latents, "timestep": _batched(t), "encoder_hidden_states": inputs["encoder_hidden_states"],
        "encoder_attention_mask": inputs["encoder_attention_mask"],
    },
)

HIDREAM_IMAGE = ZooCase(
    name="HiDreamImageTransformer2DModel",
    build=lambda: diffusers.HiDreamImageTransformer2DModel(
        patch_size=2, in_channels=4, out_channels=4, num_layers=1, num_single_layers=2, attention_head_dim=8,
        num_attention_heads=4, caption_channels=[8, 4], text_emb_dim=8, num_routed_experts=2,
        num_activated_experts=2, axes_dims_rope=(4, 2, 2), max_resolution=(32, 32), llama_layers=(0, 1, 2),
        force_inference_output=True,
    ),
    inputs=lambda generator: {
        "latents": _randn(generator, BATCH, 4, 8, 8),
        "encoder_hidden_states_t5": _randn(generator, BATCH, 8, 8),
        "encoder_hidden_states_llama3": _randn(generator, 3, BATCH, 8, 4),  # [Llama layer, batch, tokens, width]
        "pooled_embeds": _randn(generator, BATCH, 8),
    },
    call=lambda inputs, latents, t: {
        "hidden_states": latents, "timesteps": _batched(t),
        **{name: inputs[name] for name in ("encoder_hidden_states_t5", "encoder_hidden_states_llama3", "pooled_embeds")},
    },
)


# -- FLUX.3 (image-to-image: with reference image tokens) --------------------------------------------


def _flux3_ids(t: int, height: int, width: int) -> torch.Tensor:
    return torch.cartesian_prod(torch.tensor([t]), torch.arange(height), torch.arange(width), torch.arange(1))


FLUX3 = ZooCase(
    name="Flux3Transformer2DModel",
    build=lambda: diffusers.Flux3Transformer2DModel(
        in_channels=4, cond_in_channels=4, num_layers=1, num_single_layers=2, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, timestep_channels=32, axes_dims_rope=(4, 4, 4, 4),
    ),
    inputs=lambda generator: {
        "latents": _randn(generator, BATCH, 16, 4),
        "encoder_hidden_states": _randn(generator, BATCH, 8, 32),
        "image_cond_hidden_states": _randn(generator, BATCH, 4, 4),
        "img_ids": _flux3_ids(0, 4, 4),
        "txt_ids": torch.cartesian_prod(torch.arange(1), torch.arange(1), torch.arange(1), torch.arange(8)),
        "image_cond_ids": _flux3_ids(1, 2, 2),
    },
    call=lambda inputs, latents, t: {
        "hidden_states": latents, "timestep": _batched(t, 1 / 1000),
        **{name: inputs[name] for name in (
            "encoder_hidden_states", "img_ids", "txt_ids", "image_cond_hidden_states", "image_cond_ids")},
    },
)


CASES = [
    FLUX, FLUX2, CHROMA, BRIA, BRIA_FIBO, LONGCAT_IMAGE, OVIS_IMAGE, AURA_FLOW, HUNYUAN_IMAGE, HIDREAM_IMAGE, FLUX3,
]
