"""Zoo cases: see zoo/__init__.py.

Dual-stream (MMDiT-style) transformers: CogVideoX, ConsisID, CogView3-Plus, CogView4, EasyAnimate,
GLM-Image, Mochi, JoyImage-Edit (and Plus), SD3 and Qwen-Image. Configs and inputs follow
diffusers' own model tests, shrunk to 16-32 image tokens and 8 text tokens.
"""

from __future__ import annotations

import diffusers
import torch

from zoo import ZooCase

BATCH = 2
TEXT = 8


def _randn(generator: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=generator)


def _batched(t: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """The scheduler's timestep as a batch-sized 1-d tensor, times ``scale``."""
    return (t.float() * scale).expand(BATCH)


def _text(generator, width: int) -> dict:
    return {"encoder_hidden_states": _randn(generator, BATCH, TEXT, width)}


# -- CogVideoX and ConsisID: latents [B, F, C, H, W], timestep t (DDIM-style 0-1000) -----------------


def _cogvideox_inputs(generator):
    return {"latents": _randn(generator, BATCH, 2, 4, 8, 8), **_text(generator, 8)}


def _text_call(inputs, latents, t, scale=1.0):
    return {"hidden_states": latents, "encoder_hidden_states": inputs["encoder_hidden_states"], "timestep": _batched(t, scale)}


_COGVIDEOX_CONFIG = dict(
    num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4, time_embed_dim=8, text_embed_dim=8,
    num_layers=2, sample_width=8, sample_height=8, sample_frames=5, patch_size=2, temporal_compression_ratio=4,
    max_text_seq_length=TEXT,
)

COGVIDEOX = ZooCase(
    name="CogVideoXTransformer3DModel",
    build=lambda: diffusers.CogVideoXTransformer3DModel(**_COGVIDEOX_CONFIG),
    inputs=_cogvideox_inputs,
    call=_text_call,
)

# Built without the face modules (is_train_face=False): a face model runs every block (see the adapter).
CONSISID = ZooCase(
    name="ConsisIDTransformer3DModel",
    build=lambda: diffusers.ConsisIDTransformer3DModel(**_COGVIDEOX_CONFIG, is_train_face=False),
    inputs=_cogvideox_inputs,
    call=_text_call,
)


# -- CogView3-Plus and CogView4: latents [B, C, H, W], SDXL-style size conditions -----------------------


def _cogview_inputs(generator):
    size = torch.tensor([[64, 64]] * BATCH)
    return {
        "latents": _randn(generator, BATCH, 4, 8, 8), **_text(generator, 8),
        "original_size": size, "target_size": size, "crop_coords": torch.zeros(BATCH, 2),
    }


def _cogview_call(inputs, latents, t):
    return {
        **_text_call(inputs, latents, t), "original_size": inputs["original_size"],
        "target_size": inputs["target_size"], "crop_coords": inputs["crop_coords"],
    }


COGVIEW3PLUS = ZooCase(
    name="CogView3PlusTransformer2DModel",
    build=lambda: diffusers.CogView3PlusTransformer2DModel(
        patch_size=2, in_channels=4, num_layers=2, attention_head_dim=8, num_attention_heads=2, out_channels=4,
        text_embed_dim=8, time_embed_dim=8, condition_dim=2, pos_embed_max_size=8, sample_size=8,
    ),
    inputs=_cogview_inputs,
    call=_cogview_call,
)

COGVIEW4 = ZooCase(
    name="CogView4Transformer2DModel",
    build=lambda: diffusers.CogView4Transformer2DModel(
        patch_size=2, in_channels=4, num_layers=2, attention_head_dim=4, num_attention_heads=4, out_channels=4,
        text_embed_dim=8, time_embed_dim=8, condition_dim=4,
    ),
    inputs=_cogview_inputs,
    call=_cogview_call,
)


# -- EasyAnimate: latents [B, C, F, H, W]; block 0 is an MMDiT block, block 1 shares its feed-forward --


EASYANIMATE = ZooCase(
    name="EasyAnimateTransformer3DModel",
    build=lambda: diffusers.EasyAnimateTransformer3DModel(
        attention_head_dim=16, num_attention_heads=2, in_channels=4, out_channels=4, mmdit_layers=1, num_layers=2,
        patch_size=2, text_embed_dim=16, time_embed_dim=8,
    ),
    inputs=lambda generator: {"latents": _randn(generator, BATCH, 4, 2, 8, 8), **_text(generator, 16)},
    call=_text_call,
)


# -- GLM-Image: latents [B, C, H, W], prior tokens per image token, timestep t - 1 as its pipeline -----


def _glm_inputs(generator):
    return {
        "latents": _randn(generator, BATCH, 4, 8, 8), **_text(generator, 16),
        "prior_token_id": torch.randint(0, 64, (BATCH, 16), generator=generator),
        "size": torch.tensor([[8.0, 8.0]] * BATCH),
    }


GLM_IMAGE = ZooCase(
    name="GlmImageTransformer2DModel",
    build=lambda: diffusers.GlmImageTransformer2DModel(
        patch_size=2, in_channels=4, out_channels=4, num_layers=2, attention_head_dim=8, num_attention_heads=2,
        text_embed_dim=16, time_embed_dim=16, condition_dim=8, prior_vq_quantizer_codebook_size=64,
    ),
    inputs=_glm_inputs,
    call=lambda inputs, latents, t: {
        "hidden_states": latents, "encoder_hidden_states": inputs["encoder_hidden_states"],
        "prior_token_id": inputs["prior_token_id"], "prior_token_drop": torch.zeros(BATCH, 16, dtype=torch.bool),
        "timestep": _batched(t) - 1, "target_size": inputs["size"], "crop_coords": torch.zeros(BATCH, 2),
    },
)


# -- Mochi: latents [B, C, F, H, W], inverted timesteps (1000 - t) as its pipeline's scheduler ---------


MOCHI = ZooCase(
    name="MochiTransformer3DModel",
    build=lambda: diffusers.MochiTransformer3DModel(
        patch_size=2, num_attention_heads=2, attention_head_dim=8, num_layers=2, pooled_projection_dim=16,
        in_channels=4, text_embed_dim=16, time_embed_dim=4, max_sequence_length=16,
    ),
    inputs=lambda generator: {"latents": _randn(generator, BATCH, 4, 2, 8, 8), **_text(generator, 16)},
    call=lambda inputs, latents, t: {
        "hidden_states": latents, "encoder_hidden_states": inputs["encoder_hidden_states"],
        "timestep": 1000 - _batched(t), "encoder_attention_mask": torch.ones(BATCH, TEXT, dtype=torch.bool),
    },
)


# -- JoyImage-Edit: latents [B, C, F, H, W]; Plus: padded patches [B, N, C, pt, ph, pw] ---------------


_JOY_CONFIG = dict(
    patch_size=[1, 2, 2], in_channels=4, hidden_size=32, num_attention_heads=2, text_dim=16, num_layers=2,
    rope_dim_list=[4, 6, 6], theta=256,
)

JOYIMAGE_EDIT = ZooCase(
    name="JoyImageEditTransformer3DModel",
    build=lambda: diffusers.JoyImageEditTransformer3DModel(**_JOY_CONFIG),
    inputs=lambda generator: {"latents": _randn(generator, BATCH, 4, 1, 8, 8), **_text(generator, 16)},
    call=_text_call,
)


def _joy_plus_inputs(generator):
    return {
        "latents": _randn(generator, BATCH, 16, 4, 1, 2, 2), **_text(generator, 16),
        "text_mask": torch.ones(BATCH, TEXT),
    }


JOYIMAGE_EDIT_PLUS = ZooCase(
    name="JoyImageEditPlusTransformer3DModel",
    build=lambda: diffusers.JoyImageEditPlusTransformer3DModel(**_JOY_CONFIG),
    inputs=_joy_plus_inputs,
    call=lambda inputs, latents, t: {
        **_text_call(inputs, latents, t), "encoder_hidden_states_mask": inputs["text_mask"],
        "shape_list": [[(1, 4, 4)]] * BATCH,  # the target alone: 16 patches, no padding
    },
)


# -- SD3 (adapter sd3) and Qwen-Image (adapter qwen-image), as in tests/test_adapters.py -------------


def _sd3_inputs(generator):
    return {"latents": _randn(generator, BATCH, 4, 8, 8), **_text(generator, 16), "pooled": _randn(generator, BATCH, 8)}


SD3 = ZooCase(
    name="SD3Transformer2DModel",
    build=lambda: diffusers.SD3Transformer2DModel(
        sample_size=8, patch_size=2, in_channels=4, num_layers=2, attention_head_dim=8, num_attention_heads=2,
        joint_attention_dim=16, caption_projection_dim=16, pooled_projection_dim=8, out_channels=4,
        pos_embed_max_size=8, dual_attention_layers=(0,),
    ),
    inputs=_sd3_inputs,
    call=lambda inputs, latents, t: {**_text_call(inputs, latents, t), "pooled_projections": inputs["pooled"]},
)

QWEN_IMAGE = ZooCase(
    name="QwenImageTransformer2DModel",
    build=lambda: diffusers.QwenImageTransformer2DModel(
        patch_size=1, in_channels=4, out_channels=4, num_layers=2, attention_head_dim=8, num_attention_heads=2,
        joint_attention_dim=16, axes_dims_rope=(2, 2, 4),
    ),
    inputs=lambda generator: {"latents": _randn(generator, BATCH, 16, 4), **_text(generator, 16)},
    call=lambda inputs, latents, t: {
        **_text_call(inputs, latents, t, 1 / 1000), "encoder_hidden_states_mask": torch.ones(BATCH, TEXT),
        "img_shapes": [(1, 4, 4)] * BATCH,
    },
)


CASES = [
    COGVIDEOX, CONSISID, COGVIEW3PLUS, COGVIEW4, EASYANIMATE, GLM_IMAGE, MOCHI, JOYIMAGE_EDIT, JOYIMAGE_EDIT_PLUS,
    SD3, QWEN_IMAGE,
]
