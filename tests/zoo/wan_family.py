"""Zoo cases: see zoo/__init__.py.

Wan 2.1 / 2.2 and the classes built on its blocks: Wan VACE, Wan Animate, Wan-Animate-2, SkyReels-V2,
ChronoEdit, Helios, AnyFlow (bidirectional and FAR causal), plus Motif-Video. Configs and inputs
follow diffusers' own model tests, shrunk to a couple of latent frames of 8x8 (32 video tokens or
so after the 1x2x2 patch) and a few text tokens.
"""

from __future__ import annotations

import functools
import sys
from unittest import mock

import diffusers
import torch
from diffusers.models.transformers.transformer_wan_animate_2 import WanAnimate2KVCache

from zoo import ZooCase

BATCH = 2


def _randn(generator: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=generator)


def _batched(t: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """The scheduler's timestep as a batch-sized 1-d tensor, times ``scale``."""
    return (t.float() * scale).expand(BATCH)


def _per_frame(t: torch.Tensor, frames: int) -> torch.Tensor:
    """The scheduler's timestep as a [batch, frames] tensor (AnyFlow's per-frame timesteps)."""
    return t.float().expand(BATCH, frames).contiguous()


def _text(generator, tokens: int = 8, width: int = 16) -> torch.Tensor:
    return _randn(generator, BATCH, tokens, width)


def _wan_call(inputs, latents, t):
    """Wan-style call: video latents [B, C, F, H, W], the timestep in 0..1000, text embeddings."""
    return {"hidden_states": latents, "timestep": _batched(t), "encoder_hidden_states": inputs["encoder_hidden_states"]}


def _wan_inputs(channels: int = 4, frames: int = 2, size: int = 8, text_width: int = 16):
    def inputs(generator):
        return {
            "latents": _randn(generator, BATCH, channels, frames, size, size),
            "encoder_hidden_states": _text(generator, width=text_width),
        }

    return inputs


# -- Wan 2.1 -----------------------------------------------------------------------------------------

WAN = ZooCase(
    name="WanTransformer3DModel",
    build=lambda: diffusers.WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=4, out_channels=4,
        text_dim=16, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
    ),
    inputs=_wan_inputs(),
    call=_wan_call,
)


# -- Wan VACE ----------------------------------------------------------------------------------------


def _vace_inputs(generator):
    return {
        **_wan_inputs(text_width=32)(generator),
        "control_hidden_states": _randn(generator, BATCH, 12, 2, 8, 8),  # vace_in_channels = 3 * in_channels
    }


WAN_VACE = ZooCase(
    name="WanVACETransformer3DModel",
    build=lambda: diffusers.WanVACETransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=4, out_channels=4,
        text_dim=32, freq_dim=256, ffn_dim=32, num_layers=3, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32, vace_layers=[0, 2], vace_in_channels=12,
    ),
    inputs=_vace_inputs,
    call=lambda inputs, latents, t: {
        **_wan_call(inputs, latents, t), "control_hidden_states": inputs["control_hidden_states"],
        "control_hidden_states_scale": torch.tensor([1.0, 0.5]),
    },
)


# -- Wan Animate -------------------------------------------------------------------------------------
# 3 latent frames of 8x8 (48 tokens); 5 face frames, which the face encoder shortens to 2, plus one
# padding frame: 3 motion frames, which must divide the 48 tokens.


def _animate_inputs(generator):
    return {
        "latents": _randn(generator, BATCH, 4, 3, 8, 8),
        "reference": _randn(generator, BATCH, 8, 3, 8, 8),  # the 2C + 4 - C channels concatenated to the latents
        "encoder_hidden_states": _text(generator),
        "encoder_hidden_states_image": _randn(generator, BATCH, 4, 16),
        "pose_hidden_states": _randn(generator, BATCH, 4, 2, 8, 8),
        "face_pixel_values": _randn(generator, BATCH, 3, 5, 16, 16),
    }


WAN_ANIMATE = ZooCase(
    name="WanAnimateTransformer3DModel",
    build=lambda: diffusers.WanAnimateTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=12, latent_channels=4,
        out_channels=4, text_dim=16, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", image_dim=16, rope_max_seq_len=32,
        motion_encoder_channel_sizes={"4": 16, "8": 16, "16": 16}, motion_encoder_size=16, motion_style_dim=8,
        motion_dim=4, motion_encoder_dim=16, face_encoder_hidden_dim=16, face_encoder_num_heads=2,
        inject_face_latents_blocks=1,  # a face adapter after every block: after a middle one and after the last
    ),
    inputs=_animate_inputs,
    call=lambda inputs, latents, t: {
        "hidden_states": torch.cat([latents, inputs["reference"]], dim=1), "timestep": _batched(t),
        "encoder_hidden_states": inputs["encoder_hidden_states"],
        "encoder_hidden_states_image": inputs["encoder_hidden_states_image"],
        "pose_hidden_states": inputs["pose_hidden_states"], "face_pixel_values": inputs["face_pixel_values"],
    },
)


# -- Wan-Animate-2 -----------------------------------------------------------------------------------
# The generation pass (kv_cache_mode="cached") against a reference K/V cache filled with random
# tensors (what the reference pass would have written): 3 latent frames of 4x4, 2x2 tokens each.

ANIMATE2_LAYERS, ANIMATE2_HEADS, ANIMATE2_HEAD_DIM = 2, 2, 16


def _animate2_inputs(generator):
    cache = WanAnimate2KVCache(ANIMATE2_LAYERS)
    reference_tokens = 2 * 4  # 2 reference frames of 2x2 tokens
    for layer in cache.layer_caches:
        layer.store(
            _randn(generator, BATCH, reference_tokens, ANIMATE2_HEADS, ANIMATE2_HEAD_DIM),
            _randn(generator, BATCH, reference_tokens, ANIMATE2_HEADS, ANIMATE2_HEAD_DIM),
        )
    return {
        "latents": _randn(generator, BATCH, 4, 3, 4, 4),
        "condition_latents": [_randn(generator, 8, 3, 4, 4) for _ in range(BATCH)],
        "encoder_hidden_states": [_randn(generator, 8, 16) for _ in range(BATCH)],
        "kv_cache": cache,
    }


def _animate2_call(inputs, latents, t):
    return {
        "hidden_states": list(latents.unbind(0)), "timestep": _batched(t),
        "encoder_hidden_states": inputs["encoder_hidden_states"], "condition_latents": inputs["condition_latents"],
        "kv_cache": inputs["kv_cache"], "kv_cache_mode": "cached", "seq_len": 12,
        "reference_grid_sizes": torch.tensor([[2, 2, 2]] * BATCH), "origin_len": 5, "origin_area": [32, 32],
    }


def _animate2_build():
    model = diffusers.WanAnimate2Transformer3DModel(
        patch_size=(1, 2, 2), text_len=16, in_dim=12, dim=ANIMATE2_HEADS * ANIMATE2_HEAD_DIM, ffn_dim=64,
        freq_dim=64, text_dim=16, out_dim=4, num_heads=ANIMATE2_HEADS, num_layers=ANIMATE2_LAYERS,
        cross_attn_norm=True, use_img_emb=False,
    )
    # The model builds its flex BlockMask with create_block_mask(_compile=True) on first use, which
    # compiles for many seconds on CPU: build the one this case needs (origin_len 5 -> 2 latent frames,
    # 32x32 -> 4 tokens a frame) uncompiled, where the model caches it.
    module = sys.modules[type(model).__module__]
    uncompiled = functools.partial(_uncompiled_block_mask, module.create_block_mask)
    with mock.patch.object(module, "create_block_mask", uncompiled):
        model.block_masks[(2, 4)] = model.create_mask(2, 4, torch.device("cpu"))
    return model


def _uncompiled_block_mask(create_block_mask, *args, _compile=False, **kwargs):
    return create_block_mask(*args, _compile=False, **kwargs)


WAN_ANIMATE_2 = ZooCase(
    name="WanAnimate2Transformer3DModel",
    build=_animate2_build,
    inputs=_animate2_inputs,
    call=_animate2_call,
    velocity=lambda output, latents: torch.stack(output[0]),  # one unpatchified tensor per sample
    steps=6,  # flex attention runs unfused, slowly, on CPU
)


# -- SkyReels-V2 -------------------------------------------------------------------------------------

SKYREELS_V2 = ZooCase(
    name="SkyReelsV2Transformer3DModel",
    build=lambda: diffusers.SkyReelsV2Transformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=4, out_channels=4,
        text_dim=16, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
    ),
    inputs=_wan_inputs(),
    call=_wan_call,
)


# -- ChronoEdit --------------------------------------------------------------------------------------

CHRONO_EDIT = ZooCase(
    name="ChronoEditTransformer3DModel",
    build=lambda: diffusers.ChronoEditTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4,
        text_dim=32, freq_dim=16, ffn_dim=32, num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
        rope_max_seq_len=64, rope_temporal_skip_len=8,
    ),
    inputs=_wan_inputs(text_width=32),
    call=_wan_call,
)


# -- Helios ------------------------------------------------------------------------------------------
# 2 latent frames of 8x8 (32 tokens) after short (16), mid (4) and long (1) history tokens: 53 in all.


def _helios_inputs(generator):
    return {
        **_wan_inputs()(generator),
        "indices_hidden_states": torch.arange(5, 7).expand(BATCH, -1),
        "indices_latents_history_short": torch.arange(4, 5).expand(BATCH, -1),
        "indices_latents_history_mid": torch.arange(3, 4).expand(BATCH, -1),
        "indices_latents_history_long": torch.arange(0, 3).expand(BATCH, -1),
        "latents_history_short": _randn(generator, BATCH, 4, 1, 8, 8),
        "latents_history_mid": _randn(generator, BATCH, 4, 1, 8, 8),
        "latents_history_long": _randn(generator, BATCH, 4, 3, 8, 8),
    }


HELIOS = ZooCase(
    name="HeliosTransformer3DModel",
    build=lambda: diffusers.HeliosTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=4, out_channels=4,
        text_dim=16, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
        rope_dim=(4, 4, 4), has_multi_term_memory_patch=True, guidance_cross_attn=True, zero_history_timestep=True,
        is_amplify_history=False,
    ),
    inputs=_helios_inputs,
    call=lambda inputs, latents, t: {
        **_wan_call(inputs, latents, t),
        **{name: value for name, value in inputs.items() if name.startswith(("indices_", "latents_history_"))},
    },
)


# -- AnyFlow -----------------------------------------------------------------------------------------
# Latents are laid out [B, F, C, H, W]; the target timestep r equals t (plain velocity, as the
# pipeline does without mean-velocity sampling).


def _anyflow_inputs(frames: int):
    def inputs(generator):
        return {"latents": _randn(generator, BATCH, frames, 4, 8, 8), "encoder_hidden_states": _text(generator)}

    return inputs


def _anyflow_call(inputs, latents, t):
    timestep = _per_frame(t, latents.shape[1])
    return {
        "hidden_states": latents, "timestep": timestep, "r_timestep": timestep,
        "encoder_hidden_states": inputs["encoder_hidden_states"],
    }


ANYFLOW = ZooCase(
    name="AnyFlowTransformer3DModel",
    build=lambda: diffusers.AnyFlowTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=4, out_channels=4,
        text_dim=16, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True, rope_max_seq_len=32,
        gate_value=0.25, deltatime_type="r",
    ),
    inputs=_anyflow_inputs(2),
    call=_anyflow_call,
)


# -- AnyFlow FAR -------------------------------------------------------------------------------------
# The autoregressive inference path the pipeline samples with: the second of two 1-frame chunks
# (16 tokens), attending to a KV cache of the first chunk filled with random tensors.

FAR_LAYERS, FAR_HEADS, FAR_HEAD_DIM, FAR_TOKENS = 2, 2, 12, 16


def _far_inputs(generator):
    def cache():
        return {
            "full_cache": _randn(generator, 2, BATCH, FAR_HEADS, 3 * FAR_TOKENS, FAR_HEAD_DIM),
            "compressed_cache": _randn(generator, 2, BATCH, FAR_HEADS, FAR_TOKENS, FAR_HEAD_DIM),
        }

    return {**_anyflow_inputs(1)(generator), "kv_cache": [cache() for _ in range(FAR_LAYERS)]}


ANYFLOW_FAR = ZooCase(
    name="AnyFlowFARTransformer3DModel",
    build=lambda: diffusers.AnyFlowFARTransformer3DModel(
        patch_size=(1, 2, 2), compressed_patch_size=(1, 4, 4), full_chunk_limit=3, num_attention_heads=FAR_HEADS,
        attention_head_dim=FAR_HEAD_DIM, in_channels=4, out_channels=4, text_dim=16, freq_dim=256, ffn_dim=32,
        num_layers=FAR_LAYERS, cross_attn_norm=True, rope_max_seq_len=32, chunk_partition=(1, 1),
    ),
    inputs=_far_inputs,
    call=lambda inputs, latents, t: {
        **_anyflow_call(inputs, latents, t), "chunk_partition": [1, 1], "kv_cache": inputs["kv_cache"],
        "kv_cache_flag": {"num_cached_chunks": 1, "is_cache_step": False},
    },
    steps=6,  # flex attention runs unfused, slowly, on CPU
)


# -- Motif-Video -------------------------------------------------------------------------------------

MOTIF_VIDEO = ZooCase(
    name="MotifVideoTransformer3DModel",
    build=lambda: diffusers.MotifVideoTransformer3DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=12, num_layers=1,
        num_single_layers=2, num_decoder_layers=0, mlp_ratio=2.0, patch_size=1, patch_size_t=1, text_embed_dim=16,
        rope_axes_dim=(4, 4, 4),
    ),
    inputs=_wan_inputs(size=4),
    call=_wan_call,
)


CASES = [
    WAN, WAN_VACE, WAN_ANIMATE, WAN_ANIMATE_2, SKYREELS_V2, CHRONO_EDIT, HELIOS, ANYFLOW, ANYFLOW_FAR, MOTIF_VIDEO,
]
