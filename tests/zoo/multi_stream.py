"""Zoo cases: see zoo/__init__.py.

Video models with a second stream (LTX-2, Kandinsky 6: audio) sample both streams: their latents
hold the video and the audio latents together (joined on the token axis, or flattened and joined),
``call`` splits them and ``velocity`` joins both predictions, so a stale or wrongly predicted audio
stream shows in the sampled latents.
"""

from __future__ import annotations


import torch
from diffusers import (
    HunyuanVideo15Transformer3DModel,
    HunyuanVideoFramepackTransformer3DModel,
    HunyuanVideoTransformer3DModel,
    Kandinsky5Transformer3DModel,
    Kandinsky6SRTransformer3DModel,
    Kandinsky6Transformer3DModel,
    LTX2VideoTransformer3DModel,
)

from zoo import ZooCase

BATCH = 2


def randn(generator, *shape):
    return torch.randn(*shape, generator=generator)


def batched(t, scale=1.0):
    """The scheduler timestep as a batch-sized 1-d tensor."""
    return (t / scale).expand(BATCH).float()


# -- LTX-2: video [B, 32, 4] and audio [B, 9, 4] latents joined on the token axis -----------------
LTX2_FRAMES, LTX2_SIDE, LTX2_AUDIO = 2, 4, 9
LTX2_VIDEO = LTX2_FRAMES * LTX2_SIDE * LTX2_SIDE


def ltx2():
    return LTX2VideoTransformer3DModel(
        in_channels=4, out_channels=4, patch_size=1, patch_size_t=1, num_attention_heads=2, attention_head_dim=8,
        cross_attention_dim=16, audio_in_channels=4, audio_out_channels=4, audio_num_attention_heads=2,
        audio_attention_head_dim=4, audio_cross_attention_dim=8, num_layers=2, qk_norm="rms_norm_across_heads",
        caption_channels=16, rope_double_precision=False,
    )


def ltx2_inputs(g):
    return {
        "latents": randn(g, BATCH, LTX2_VIDEO + LTX2_AUDIO, 4),
        "encoder_hidden_states": randn(g, BATCH, 6, 16),
        "audio_encoder_hidden_states": randn(g, BATCH, 6, 16),
        "encoder_attention_mask": torch.ones(BATCH, 6),
    }


def ltx2_call(c, x, t):
    return dict(
        hidden_states=x[:, :LTX2_VIDEO], audio_hidden_states=x[:, LTX2_VIDEO:],
        encoder_hidden_states=c["encoder_hidden_states"], audio_encoder_hidden_states=c["audio_encoder_hidden_states"],
        timestep=batched(t), encoder_attention_mask=c["encoder_attention_mask"],
        audio_encoder_attention_mask=c["encoder_attention_mask"], num_frames=LTX2_FRAMES, height=LTX2_SIDE,
        width=LTX2_SIDE, audio_num_frames=LTX2_AUDIO, fps=25.0,
    )


def video_and_audio(output, latents):
    video, audio = output[0], output[1]
    return torch.cat([video, audio], dim=1)


# -- Kandinsky 5: [B, T, H, W, C] latents -------------------------------------------------------
def kandinsky5():
    model = Kandinsky5Transformer3DModel(
        in_visual_dim=4, in_text_dim=16, in_text_dim2=8, time_dim=16, out_visual_dim=4, patch_size=(1, 2, 2),
        model_dim=16, ff_dim=32, num_text_blocks=1, num_visual_blocks=2, axes_dims=(1, 1, 2), visual_cond=False,
        attention_type="regular",
    )
    # Its modulations start at zero (every block an identity): give them random weights.
    for name, module in model.named_modules():
        if name.endswith("modulation.out_layer"):
            torch.nn.init.normal_(module.weight, std=0.1)
            torch.nn.init.normal_(module.bias, std=0.1)
    return model


def kandinsky5_inputs(g):
    return {
        "latents": randn(g, BATCH, 2, 8, 8, 4),
        "encoder_hidden_states": randn(g, BATCH, 5, 16),
        "pooled_projections": randn(g, BATCH, 8),
    }


def kandinsky5_call(c, x, t):
    return dict(
        hidden_states=x, encoder_hidden_states=c["encoder_hidden_states"], timestep=batched(t),
        pooled_projections=c["pooled_projections"], visual_rope_pos=[torch.arange(2), torch.arange(4), torch.arange(4)],
        text_rope_pos=torch.arange(5), scale_factor=(1.0, 1.0, 1.0),
    )


# -- Kandinsky 6: video [B, 2, 8, 8, 4] and audio [B, 6, 4] latents, flattened and joined -------------
K6_VIDEO, K6_AUDIO = (2, 8, 8, 4), (6, 4)
K6_VIDEO_SIZE = 2 * 8 * 8 * 4


def kandinsky6():
    return Kandinsky6Transformer3DModel(
        in_visual_dim=4, out_visual_dim=4, in_text_dim=16, in_text_dim2=8, time_dim=16, patch_size=(1, 2, 2),
        model_dim=16, ff_dim=32, num_text_blocks=1, num_visual_blocks=2, axes_dims=(2, 2, 4), visual_cond=False,
        in_audio_dim=4, out_audio_dim=4, model_dim_a=8, time_dim_a=8, ff_dim_a=16, axes_dims_a=(2, 2, 4),
        scale_factor=(1.0, 2.0, 2.0), text_token_padding=True, ca_rope=True, cross_gates=True, fix_modulation=True,
    )


def kandinsky6_inputs(g):
    return {
        "latents": randn(g, BATCH, K6_VIDEO_SIZE + K6_AUDIO[0] * K6_AUDIO[1]),
        "encoder_hidden_states": randn(g, BATCH, 5, 16),
        "pooled_projections": randn(g, BATCH, 8),
    }


def kandinsky6_call(c, x, t):
    return dict(
        hidden_states=x[:, :K6_VIDEO_SIZE].reshape(BATCH, *K6_VIDEO),
        audio_hidden_states=x[:, K6_VIDEO_SIZE:].reshape(BATCH, *K6_AUDIO),
        encoder_hidden_states=c["encoder_hidden_states"], pooled_projections=c["pooled_projections"],
        timestep=batched(t),
    )


def flat_video_and_audio(output, latents):
    video, audio = output[0], output[1]
    return torch.cat([video.flatten(1), audio.flatten(1)], dim=1)


# -- Kandinsky 6 SR: [B, 1, 8, 8, 2 * 4 + 1] (noisy latent, anchor latent, anchor mask) -------------
def kandinsky6_sr():
    return Kandinsky6SRTransformer3DModel(
        in_visual_dim=4, out_visual_dim=4, time_dim=16, patch_size=(1, 1, 1), model_dim=16, ff_dim=32,
        num_visual_blocks=2, axes_dims=(2, 2, 4), nabla_window=(3, 3, 3),
    )


def kandinsky6_sr_inputs(g):
    return {"latents": randn(g, BATCH, 1, 8, 8, 4), "anchor": randn(g, BATCH, 1, 8, 8, 4)}


def kandinsky6_sr_call(c, x, t):
    mask = torch.ones(BATCH, 1, 8, 8, 1)
    return dict(hidden_states=torch.cat([x, c["anchor"], mask], dim=-1), timestep=batched(t))


# -- HunyuanVideo 1.5: [B, C, F, H, W] latents ----------------------------------------------------
def hunyuan_video15():
    return HunyuanVideo15Transformer3DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=2,
        num_refiner_layers=1, mlp_ratio=2.0, patch_size=1, patch_size_t=1, text_embed_dim=16, text_embed_2_dim=8,
        image_embed_dim=12, rope_axes_dim=(2, 2, 4), target_size=16, task_type="t2v",
    )


def hunyuan_video15_inputs(g):
    return {
        "latents": randn(g, BATCH, 4, 1, 8, 8),
        "encoder_hidden_states": randn(g, BATCH, 6, 16),
        "encoder_hidden_states_2": randn(g, BATCH, 4, 8),
        "encoder_attention_mask": torch.tensor([[1.0] * 6, [1.0] * 4 + [0.0] * 2]),
        "encoder_attention_mask_2": torch.ones(BATCH, 4),
        "image_embeds": torch.zeros(BATCH, 3, 12),
    }


def hunyuan_video15_call(c, x, t):
    return dict(hidden_states=x, timestep=batched(t), **{k: v for k, v in c.items() if k != "latents"})


# -- HunyuanVideo FramePack: [B, C, F, H, W] latents plus clean and 2x/4x history latents ----------
def hunyuan_video_framepack():
    return HunyuanVideoFramepackTransformer3DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=10, num_layers=1,
        num_single_layers=1, num_refiner_layers=1, patch_size=2, patch_size_t=1, guidance_embeds=True,
        text_embed_dim=16, pooled_projection_dim=8, rope_axes_dim=(2, 4, 4), image_condition_type=None,
        has_image_proj=True, image_proj_dim=16, has_clean_x_embedder=True,
    )


def hunyuan_video_framepack_inputs(g):
    frames = 3
    return {
        "latents": randn(g, BATCH, 4, frames, 4, 4),
        "encoder_hidden_states": randn(g, BATCH, 6, 16),
        "pooled_projections": randn(g, BATCH, 8),
        "encoder_attention_mask": torch.tensor([[1.0] * 6, [1.0] * 4 + [0.0] * 2]),
        "image_embeds": randn(g, BATCH, 4, 16),
        "indices_latents": torch.arange(3, 3 + frames),
        "latents_clean": randn(g, BATCH, 4, 2, 4, 4),
        "indices_latents_clean": torch.tensor([0, 6]),
        "latents_history_2x": randn(g, BATCH, 4, 2, 4, 4),
        "indices_latents_history_2x": torch.tensor([7, 8]),
        "latents_history_4x": randn(g, BATCH, 4, 8, 4, 4),
        "indices_latents_history_4x": torch.arange(9, 17),
    }


def hunyuan_video_framepack_call(c, x, t):
    return dict(
        hidden_states=x, timestep=batched(t), guidance=torch.full((BATCH,), 6000.0),
        **{k: v for k, v in c.items() if k != "latents"},
    )


# -- HunyuanVideo: the tiny model of tests/test_adapters.py ------------------------------------------
def hunyuan_video():
    return HunyuanVideoTransformer3DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=1, num_single_layers=1,
        num_refiner_layers=1, patch_size=2, patch_size_t=1, guidance_embeds=False, text_embed_dim=16,
        pooled_projection_dim=8, rope_axes_dim=(2, 2, 4),
    )


def hunyuan_video_inputs(g):
    return {
        "latents": randn(g, BATCH, 4, 3, 4, 4),
        "encoder_hidden_states": randn(g, BATCH, 3, 16),
        "pooled_projections": randn(g, BATCH, 8),
        "encoder_attention_mask": torch.ones(BATCH, 3),
    }


def hunyuan_video_call(c, x, t):
    return dict(hidden_states=x, timestep=batched(t), **{k: v for k, v in c.items() if k != "latents"})


CASES = [
    ZooCase("LTX2VideoTransformer3DModel", ltx2, ltx2_inputs, ltx2_call, video_and_audio),
    ZooCase("Kandinsky5Transformer3DModel", kandinsky5, kandinsky5_inputs, kandinsky5_call),
    ZooCase("Kandinsky6Transformer3DModel", kandinsky6, kandinsky6_inputs, kandinsky6_call, flat_video_and_audio),
    ZooCase("Kandinsky6SRTransformer3DModel", kandinsky6_sr, kandinsky6_sr_inputs, kandinsky6_sr_call),
    ZooCase("HunyuanVideo15Transformer3DModel", hunyuan_video15, hunyuan_video15_inputs, hunyuan_video15_call),
    ZooCase(
        "HunyuanVideoFramepackTransformer3DModel", hunyuan_video_framepack, hunyuan_video_framepack_inputs,
        hunyuan_video_framepack_call,
    ),
    ZooCase("HunyuanVideoTransformer3DModel", hunyuan_video, hunyuan_video_inputs, hunyuan_video_call),
]
