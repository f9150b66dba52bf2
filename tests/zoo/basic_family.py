"""Zoo cases: see zoo/__init__.py.

DiT, PixArt-α/Σ and Latte (diffusers' ``BasicTransformerBlock``), Allegro, Sana, Sana-Video,
SANA-WM (stage 1 and its LTX-2 refiner), LTX-Video and Cosmos (Predict 1 / 2 / 2.5): tiny configs
after diffusers' own model tests, two blocks per list, batch 2.
"""

import torch
from diffusers import (
    AllegroTransformer3DModel,
    CosmosTransformer3DModel,
    DiTTransformer2DModel,
    LatteTransformer3DModel,
    LTXVideoTransformer3DModel,
    PixArtTransformer2DModel,
    SanaTransformer2DModel,
    SanaVideoTransformer3DModel,
    SanaWMLTX2RefinerTransformer3DModel,
    SanaWMTransformer3DModel,
)

from zoo import ZooCase

BATCH = 2


def batched(t: torch.Tensor, *shape: int) -> torch.Tensor:
    """The scheduler timestep as a float tensor of ``shape`` (default: one per sample)."""
    return t.float().expand(*(shape or (BATCH,))).clone()


def randn(generator: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=generator)


# -- DiT: class-conditional, AdaLayerNormZero blocks, learned variance ---------------------------------
def dit_build():
    model = DiTTransformer2DModel(
        in_channels=4, out_channels=8, activation_fn="gelu-approximate", num_attention_heads=2, attention_head_dim=8,
        attention_bias=True, num_layers=2, norm_type="ada_norm_zero", num_embeds_ada_norm=8, patch_size=2,
        sample_size=8,
    )
    return model


dit = ZooCase(
    name="DiTTransformer2DModel",
    build=dit_build,
    inputs=lambda g: {"latents": randn(g, BATCH, 4, 8, 8), "class_labels": torch.tensor([1, 3])},
    call=lambda inputs, latents, t: {"hidden_states": latents, "timestep": batched(t), "class_labels": inputs["class_labels"]},
)

# -- PixArt: adaLN-single blocks with cross-attention, learned variance --------------------------------
pixart = ZooCase(
    name="PixArtTransformer2DModel",
    build=lambda: PixArtTransformer2DModel(
        sample_size=8, num_layers=2, patch_size=2, attention_head_dim=8, num_attention_heads=2, in_channels=4,
        cross_attention_dim=16, out_channels=8, attention_bias=True, activation_fn="gelu-approximate",
        num_embeds_ada_norm=1000, norm_type="ada_norm_single", norm_elementwise_affine=False, norm_eps=1e-6,
        use_additional_conditions=False, caption_channels=8,
    ),
    inputs=lambda g: {"latents": randn(g, BATCH, 4, 8, 8), "text": randn(g, BATCH, 8, 8)},
    call=lambda inputs, latents, t: {
        "hidden_states": latents, "encoder_hidden_states": inputs["text"], "timestep": batched(t),
        "added_cond_kwargs": {"resolution": None, "aspect_ratio": None},
    },
)

# -- Latte: spatial and temporal BasicTransformerBlocks in turn, two frames ----------------------------
latte = ZooCase(
    name="LatteTransformer3DModel",
    build=lambda: LatteTransformer3DModel(
        sample_size=8, num_layers=2, patch_size=2, attention_head_dim=8, num_attention_heads=2, caption_channels=8,
        in_channels=4, cross_attention_dim=16, out_channels=8, attention_bias=True, activation_fn="gelu-approximate",
        num_embeds_ada_norm=1000, norm_type="ada_norm_single", norm_elementwise_affine=False, norm_eps=1e-6,
        video_length=2,
    ),
    inputs=lambda g: {"latents": randn(g, BATCH, 4, 2, 8, 8), "text": randn(g, BATCH, 8, 8)},
    call=lambda inputs, latents, t: {
        "hidden_states": latents, "encoder_hidden_states": inputs["text"], "timestep": batched(t),
        "enable_temporal_attentions": True,
    },
)

# -- Allegro --------------------------------------------------------------------------------------------
allegro = ZooCase(
    name="AllegroTransformer3DModel",
    build=lambda: AllegroTransformer3DModel(
        num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4, num_layers=2,
        cross_attention_dim=16, sample_width=8, sample_height=8, sample_frames=8, caption_channels=8,
    ),
    inputs=lambda g: {"latents": randn(g, BATCH, 4, 2, 8, 8), "text": randn(g, BATCH, 16, 8)},
    call=lambda inputs, latents, t: {
        "hidden_states": latents, "encoder_hidden_states": inputs["text"], "timestep": batched(t),
    },
)

# -- Sana -----------------------------------------------------------------------------------------------
sana = ZooCase(
    name="SanaTransformer2DModel",
    build=lambda: SanaTransformer2DModel(
        patch_size=1, in_channels=4, out_channels=4, num_layers=2, attention_head_dim=8, num_attention_heads=2,
        num_cross_attention_heads=2, cross_attention_head_dim=8, cross_attention_dim=16, caption_channels=8,
        sample_size=8,
    ),
    inputs=lambda g: {"latents": randn(g, BATCH, 4, 8, 8), "text": randn(g, BATCH, 8, 8)},
    call=lambda inputs, latents, t: {
        "hidden_states": latents, "encoder_hidden_states": inputs["text"], "timestep": batched(t),
    },
)

# -- Sana-Video -----------------------------------------------------------------------------------------
sana_video = ZooCase(
    name="SanaVideoTransformer3DModel",
    build=lambda: SanaVideoTransformer3DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=12, num_layers=2,
        num_cross_attention_heads=2, cross_attention_head_dim=12, cross_attention_dim=24, caption_channels=16,
        mlp_ratio=2.5, dropout=0.0, attention_bias=False, sample_size=8, patch_size=(1, 2, 2),
        norm_elementwise_affine=False, norm_eps=1e-6, qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
    ),
    inputs=lambda g: {"latents": randn(g, BATCH, 4, 2, 8, 8), "text": randn(g, BATCH, 12, 16)},
    call=lambda inputs, latents, t: {
        "hidden_states": latents, "encoder_hidden_states": inputs["text"], "timestep": batched(t),
    },
)


# -- SANA-WM stage 1: per-frame timesteps (B, 1, T), the text mask is required --------------------------
def sana_wm_build():
    return SanaWMTransformer3DModel(
        in_channels=4, num_layers=2, hidden_size=32, num_attention_heads=2, patch_size=(1, 2, 2), softmax_every_n=2,
        linear_head_dim=16, t_kernel_size=3, conv_kernel_size=2, use_chunk_plucker_post_attn=False,
        chunk_plucker_post_attn_blocks=0, caption_channels=8, mlp_ratio=2.0,
    )


sana_wm = ZooCase(
    name="SanaWMTransformer3DModel",
    build=sana_wm_build,
    inputs=lambda g: {
        "latents": randn(g, BATCH, 4, 2, 8, 8), "text": randn(g, BATCH, 1, 8, 8), "mask": torch.ones(BATCH, 8),
    },
    call=lambda inputs, latents, t: {
        "hidden_states": latents, "timestep": batched(t, BATCH, 1, 2), "encoder_hidden_states": inputs["text"],
        "mask": inputs["mask"],
    },
)


# -- SANA-WM stage-2 refiner (LTX-2 weights, video stream only): patchified tokens, per-token timesteps --
def refiner_build():
    return SanaWMLTX2RefinerTransformer3DModel(
        in_channels=4, out_channels=4, patch_size=1, patch_size_t=1, num_attention_heads=2, attention_head_dim=8,
        cross_attention_dim=16, audio_in_channels=4, audio_out_channels=4, audio_num_attention_heads=2,
        audio_attention_head_dim=4, audio_cross_attention_dim=8, num_layers=2, caption_channels=16,
    )


def refiner_inputs(g):
    with torch.random.fork_rng(), torch.no_grad():  # the video RoPE, built by a throwaway copy of the model
        rope = refiner_build().build_rotary_emb_for_absolute_positions(
            batch_size=BATCH, frame_positions=[0, 1], height=4, width=4, device=torch.device("cpu"), fps=24.0
        )
    return {"latents": randn(g, BATCH, 2 * 4 * 4, 4), "text": randn(g, BATCH, 8, 16), "rope": rope, "mask": torch.ones(BATCH, 8)}


refiner = ZooCase(
    name="SanaWMLTX2RefinerTransformer3DModel",
    build=refiner_build,
    inputs=refiner_inputs,
    call=lambda inputs, latents, t: {
        "hidden_states": latents, "encoder_hidden_states": inputs["text"],
        "timestep": batched(t, BATCH, latents.shape[1]), "video_rotary_emb": inputs["rope"],
        "encoder_attention_mask": inputs["mask"],
    },
)

# -- LTX-Video: patchified tokens ------------------------------------------------------------------------
ltx = ZooCase(
    name="LTXVideoTransformer3DModel",
    build=lambda: LTXVideoTransformer3DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8, cross_attention_dim=16,
        num_layers=2, qk_norm="rms_norm_across_heads", caption_channels=16,
    ),
    inputs=lambda g: {
        "latents": randn(g, BATCH, 2 * 4 * 4, 4), "text": randn(g, BATCH, 8, 16), "mask": torch.ones(BATCH, 8).bool(),
    },
    call=lambda inputs, latents, t: {
        "hidden_states": latents, "encoder_hidden_states": inputs["text"], "timestep": batched(t),
        "encoder_attention_mask": inputs["mask"], "num_frames": 2, "height": 4, "width": 4,
    },
)

# -- Cosmos: learnable extra position embedding (added inside every block) -------
cosmos = ZooCase(
    name="CosmosTransformer3DModel",
    build=lambda: CosmosTransformer3DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=12, num_layers=2, mlp_ratio=2,
        text_embed_dim=16, adaln_lora_dim=4, max_size=(4, 32, 32), patch_size=(1, 2, 2), rope_scale=(2.0, 1.0, 1.0),
        concat_padding_mask=False, extra_pos_embed_type="learnable",  # True needs torchvision
    ),
    inputs=lambda g: {
        "latents": randn(g, BATCH, 4, 2, 8, 8), "text": randn(g, BATCH, 12, 16), "mask": torch.ones(BATCH, 12),
    },
    call=lambda inputs, latents, t: {
        "hidden_states": latents, "timestep": batched(t) / 1000, "encoder_hidden_states": inputs["text"],
        "attention_mask": inputs["mask"], "fps": 24,
    },
)

CASES = [dit, pixart, latte, allegro, sana, sana_video, sana_wm, refiner, ltx, cosmos]
