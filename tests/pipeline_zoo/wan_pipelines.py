"""Pipeline cases: see pipeline_zoo/__init__.py.

Wan 2.1 / 2.2 (text-to-video, two experts, image-to-video, first-last-frame, VACE, video-to-video,
Animate), SkyReels-V2 (text-to-video, image-to-video, diffusion forcing), LTX-Video, LTX-2 (video and
audio) and CogVideoX pipelines, tiny: 2-3 latent frames of 4x4 (12 to 32 video tokens), 5 steps, a
one-layer text encoder over the word-level tokenizer. The Wan family uses tiny_pipelines' 4-channel Wan
VAE (4x spatial, 2x temporal: 5 frames of 16x16 -> 3 latent frames, 12 tokens after the 1x2x2 patch);
LTX, LTX-2 and CogVideoX use 9 frames of 32x32 through 8x VAEs (their pipelines want sides divisible
by 32). Their components are in ``wan_pipelines_parts``.
"""

from __future__ import annotations

import numpy as np
import PIL.Image
import torch

from pipeline_zoo import PipelineCase
from pipeline_zoo import wan_pipelines_parts as parts
from tiny_pipelines import tiny_wan_pipeline

PROMPT = "a cat running on the moon"
NEGATIVE = "a dog"
FRAMES, SIDE, STEPS = 5, 16, 5


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _image(seed: int = 1, side: int = SIDE) -> PIL.Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return PIL.Image.fromarray(pixels)


def _video(seed: int = 2, frames: int = FRAMES, side: int = SIDE) -> list[PIL.Image.Image]:
    return [_image(seed + i, side) for i in range(frames)]


def _wan_call(**extra) -> dict:
    return {
        **dict(
            prompt=PROMPT, negative_prompt=NEGATIVE, height=SIDE, width=SIDE, num_frames=FRAMES,
            num_inference_steps=STEPS, guidance_scale=5.0, max_sequence_length=8, generator=_generator(),
            output_type="np",
        ),
        **extra,
    }


def _wan_transformer(cls=None, **config):
    """A 2-block Wan transformer like tiny_pipelines' (head dim 8, text width 16), ``config`` overriding."""
    import diffusers

    cls = cls or diffusers.WanTransformer3DModel
    base = dict(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4,
        text_dim=16, freq_dim=16, ffn_dim=32, num_layers=2, rope_max_seq_len=32,
    )
    return cls(**{**base, **config}).eval()


def _ftfy_optional(pipeline_class):
    """Wan's I2V, VACE, V2V and Animate pipelines (unlike WanPipeline) call ``ftfy.fix_text`` on the prompt
    without checking that ftfy is installed (a NameError without it): give their module an identity
    ``ftfy`` when the package is missing, as WanPipeline's ``basic_clean`` skips it."""
    import sys
    import types

    from diffusers.utils import is_ftfy_available

    module = sys.modules[pipeline_class.__module__]
    if not is_ftfy_available() and not hasattr(module, "ftfy"):
        module.ftfy = types.SimpleNamespace(fix_text=lambda text: text)
    return pipeline_class


def _wan_parts() -> dict:
    """The tiny Wan pipeline's VAE, UMT5 text encoder, tokenizer and scheduler."""
    components = tiny_wan_pipeline().components
    return {name: components[name] for name in ("vae", "text_encoder", "tokenizer", "scheduler")}


# -- Wan 2.1 / 2.2 text-to-video -----------------------------------------------------------------------

WAN = PipelineCase(
    name="WanPipeline",
    build=tiny_wan_pipeline,
    call=_wan_call,
    calls=2 * STEPS,
    how="text-to-video, CFG as two calls a step in cache contexts 'cond' and 'uncond'",
    saveable=True,
    generate_args=("--frames", "5", "--height", "16", "--width", "16"),
)


def _two_experts():
    pipe = tiny_wan_pipeline(two_experts=True)
    pipe.register_to_config(boundary_ratio=0.75)  # 8 steps at shift 3: 4 on each expert
    return pipe


WAN_22_TWO_EXPERTS = PipelineCase(
    name="WanPipeline-two-experts",
    build=_two_experts,
    call=lambda: _wan_call(num_inference_steps=8),
    calls=2 * 8,
    how="Wan 2.2 A14B: transformer (high noise) for 4 steps, then transformer_2 (low noise) past "
        "boundary_ratio 0.75; both hooked, each predicts its own steps, calls counted together",
)


# -- Wan image-to-video --------------------------------------------------------------------------------


def _wan_i2v_21(first_last: bool = False):
    """Wan 2.1 I2V: a CLIP vision encoder (hidden size 4, 5 tokens an image) whose tokens get their own
    cross-attention (``added_kv_proj_dim``; the processor takes the text as the last 512 tokens, so the
    calls use ``max_sequence_length=512``); the condition video (the image, then zeros) encoded and
    concatenated on channels with a 2-channel frame mask. ``first_last``: FLF2V, whose image embedder
    joins the two images' tokens (``pos_embed_seq_len``)."""
    from diffusers import WanImageToVideoPipeline
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    image_encoder = CLIPVisionModel(CLIPVisionConfig(
        hidden_size=4, projection_dim=4, num_hidden_layers=2, num_attention_heads=2, image_size=8,
        intermediate_size=16, patch_size=4,
    )).eval()
    return _ftfy_optional(WanImageToVideoPipeline)(
        **_wan_parts(), image_encoder=image_encoder, image_processor=CLIPImageProcessor(crop_size=8, size=8),
        transformer=_wan_transformer(
            in_channels=4 + 2 + 4, image_dim=4, added_kv_proj_dim=16, pos_embed_seq_len=2 * 5 if first_last else None,
        ),
    )


def _wan_i2v_22():
    """Wan 2.2 TI2V (5B style): no image encoder; ``expand_timesteps`` puts the encoded image in the first
    latent frame and gives its tokens timestep 0 (a per-token timestep)."""
    from diffusers import WanImageToVideoPipeline

    return _ftfy_optional(WanImageToVideoPipeline)(
        **_wan_parts(), transformer=_wan_transformer(), expand_timesteps=True,
    )


WAN_I2V = PipelineCase(
    name="WanImageToVideoPipeline",
    build=_wan_i2v_21,
    call=lambda: _wan_call(image=_image(), max_sequence_length=512),
    calls=2 * STEPS,
    how="Wan 2.1 I2V: condition frames (mask + encoded image) concatenated to the latents on channels, so "
        "no extra video tokens; CLIP image tokens go before the text and get their own cross-attention",
)

WAN_FLF2V = PipelineCase(
    name="WanImageToVideoPipeline-first-last-frame",
    build=lambda: _wan_i2v_21(first_last=True),
    call=lambda: _wan_call(image=_image(), last_image=_image(seed=9), max_sequence_length=512),
    calls=2 * STEPS,
    how="Wan 2.1 FLF2V: first and last frame in the channel condition, two CLIP images' tokens with the text",
)

WAN_22_I2V = PipelineCase(
    name="WanImageToVideoPipeline-expand-timesteps",
    build=_wan_i2v_22,
    call=lambda: _wan_call(image=_image()),
    calls=2 * STEPS,
    how="Wan 2.2 TI2V: the image's latent frame replaces the first frame, per-token timesteps [B, seq] "
        "(0 on the condition tokens); the condition tokens are predicted with the rest and re-imposed after",
)


# -- Wan VACE ------------------------------------------------------------------------------------------


def _wan_vace():
    """VACE over 3 blocks with hints after blocks 0 and 2; the control video is the masked video's inactive
    and reactive parts (4 + 4 channels) and the mask folded from 4x4 pixels (16 channels): 24 in all."""
    from diffusers import WanVACEPipeline, WanVACETransformer3DModel

    transformer = _wan_transformer(
        WanVACETransformer3DModel, num_layers=3, vace_layers=[0, 2], vace_in_channels=2 * 4 + 4 * 4,
    )
    return _ftfy_optional(WanVACEPipeline)(**_wan_parts(), transformer=transformer)


def _vace_mask(frames: int = FRAMES) -> list[PIL.Image.Image]:
    """Regenerate the right half of every frame."""
    pixels = np.zeros((SIDE, SIDE), dtype=np.uint8)
    pixels[:, SIDE // 2:] = 255
    return [PIL.Image.fromarray(pixels, mode="L")] * frames


WAN_VACE = PipelineCase(
    name="WanVACEPipeline",
    build=_wan_vace,
    call=lambda: _wan_call(video=_video(), mask=_vace_mask(), conditioning_scale=[1.0, 0.5]),
    calls=2 * STEPS,
    how="VACE inpainting: the VACE blocks' hints (scaled per layer) are added to the hidden states after "
        "blocks 0 and 2, in the stack; the wan-vace adapter sums block residuals so that a predicted step "
        "adds them once",
)

WAN_VACE_REFERENCE = PipelineCase(
    name="WanVACEPipeline-reference-image",
    build=_wan_vace,
    call=lambda: _wan_call(video=_video(), mask=_vace_mask(), reference_images=[_image(seed=7)]),
    calls=2 * STEPS,
    how="VACE with a reference image: its latent frame is prepended to the latents and the control video "
        "(one more latent frame of tokens, 16 instead of 12), predicted with the rest and cut before decoding",
)


# -- Wan video-to-video --------------------------------------------------------------------------------


def _wan_v2v():
    from diffusers import WanVideoToVideoPipeline

    return _ftfy_optional(WanVideoToVideoPipeline)(**_wan_parts(), transformer=_wan_transformer())


WAN_V2V = PipelineCase(
    name="WanVideoToVideoPipeline",
    build=_wan_v2v,
    call=lambda: dict(
        video=_video(), prompt=PROMPT, negative_prompt=NEGATIVE, height=SIDE, width=SIDE, num_inference_steps=6,
        strength=0.7, guidance_scale=5.0, max_sequence_length=8, generator=_generator(), output_type="np",
    ),
    calls=2 * int(6 * 0.7),
    how="strength 0.7 of 6 steps: the run starts at step 2 (4 steps, 8 calls); CFG as two calls a step "
        "WITHOUT cache contexts, so both land in the default context at the same scheduler step index",
)


# -- Wan Animate ---------------------------------------------------------------------------------------
# Its masks hard-code a 4x temporal VAE: a Wan VAE of 8x spatial and 4x temporal, 32x32 frames (4x4
# latents, 2x2 tokens a frame); 5 frames a segment -> 2 latent frames after the reference image's one.

ANIMATE_SIDE = 32


def _wan_animate():
    from diffusers import AutoencoderKLWan, WanAnimatePipeline, WanAnimateTransformer3DModel
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    vae = AutoencoderKLWan(
        base_dim=4, z_dim=4, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True],
        latents_mean=[0.0] * 4, latents_std=[1.0] * 4,
    ).eval()
    image_encoder = CLIPVisionModel(CLIPVisionConfig(
        hidden_size=4, projection_dim=4, num_hidden_layers=2, num_attention_heads=2, image_size=8,
        intermediate_size=16, patch_size=4,
    )).eval()
    transformer = _wan_transformer(
        WanAnimateTransformer3DModel, in_channels=4 + 4 + 4, latent_channels=4, image_dim=4,
        motion_encoder_channel_sizes={"4": 16, "8": 16, "16": 16}, motion_encoder_size=16, motion_style_dim=8,
        motion_dim=4, motion_encoder_dim=16, face_encoder_hidden_dim=16, face_encoder_num_heads=2,
        inject_face_latents_blocks=1,  # a face adapter after each block: one between blocks, one after the last
    )
    return _ftfy_optional(WanAnimatePipeline)(
        **{**_wan_parts(), "vae": vae}, image_encoder=image_encoder,
        image_processor=CLIPImageProcessor(crop_size=8, size=8), transformer=transformer,
    )


def _animate_call(frames: int = 5, **extra) -> dict:
    return {
        **_wan_call(
            image=_image(side=ANIMATE_SIDE), pose_video=_video(seed=20, frames=frames, side=ANIMATE_SIDE),
            face_video=_video(seed=40, frames=frames, side=16), height=ANIMATE_SIDE, width=ANIMATE_SIDE,
            segment_frame_length=5, prev_segment_conditioning_frames=1, mode="animate",
        ),
        **extra,
    }


WAN_ANIMATE = PipelineCase(
    name="WanAnimatePipeline",
    build=_wan_animate,
    call=lambda: {k: v for k, v in _animate_call().items() if k != "num_frames"},
    calls=2 * STEPS,
    how="Animate: the reference image's latent frame prepended (one more frame of tokens), pose latents added "
        "at the patch embedding, a face adapter after each block; the wan-animate adapter keeps the face output "
        "after block 0 inside r (skipped blocks pass x + r_hat through) and runs the last one on x + r_hat",
)

WAN_ANIMATE_SEGMENTS = PipelineCase(
    name="WanAnimatePipeline-two-segments",
    build=_wan_animate,
    call=lambda: {k: v for k, v in _animate_call(frames=9).items() if k != "num_frames"},
    calls=2 * STEPS,
    how="9 frames in two segments of 5: the pipeline resets the scheduler's timesteps between segments, so "
        "tap starts a new generation for the second (its counters give way: stats cover the last segment)",
)


# -- SkyReels-V2 ---------------------------------------------------------------------------------------


def _skyreels_parts() -> dict:
    from diffusers import UniPCMultistepScheduler

    return {**_wan_parts(), "scheduler": UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=8.0,
    )}


def _skyreels_transformer(**config):
    from diffusers import SkyReelsV2Transformer3DModel

    return _wan_transformer(SkyReelsV2Transformer3DModel, **config)


def _skyreels():
    from diffusers import SkyReelsV2Pipeline

    return _ftfy_optional(SkyReelsV2Pipeline)(**_skyreels_parts(), transformer=_skyreels_transformer())


def _skyreels_i2v():
    from diffusers import SkyReelsV2ImageToVideoPipeline
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=4, projection_dim=4, num_hidden_layers=2, num_attention_heads=2, image_size=8,
        intermediate_size=16, patch_size=4,
    )).eval()
    return _ftfy_optional(SkyReelsV2ImageToVideoPipeline)(
        **_skyreels_parts(), image_encoder=image_encoder, image_processor=CLIPImageProcessor(crop_size=8, size=8),
        transformer=_skyreels_transformer(in_channels=4 + 2 + 4, image_dim=4, added_kv_proj_dim=16),
    )


def _skyreels_df():
    from diffusers import SkyReelsV2DiffusionForcingPipeline

    return _ftfy_optional(SkyReelsV2DiffusionForcingPipeline)(
        **_skyreels_parts(), transformer=_skyreels_transformer(),
    )


SKYREELS = PipelineCase(
    name="SkyReelsV2Pipeline",
    build=_skyreels,
    call=_wan_call,
    calls=2 * STEPS,
    how="SkyReels-V2 text-to-video with a UniPC (flow) scheduler, CFG in 'cond'/'uncond' contexts",
    saveable=True,
    generate_args=("--frames", "5", "--height", "16", "--width", "16"),
)

SKYREELS_I2V = PipelineCase(
    name="SkyReelsV2ImageToVideoPipeline",
    build=_skyreels_i2v,
    call=lambda: _wan_call(image=_image(), max_sequence_length=512),
    calls=2 * STEPS,
    how="SkyReels-V2 I2V: condition frames concatenated on channels, CLIP image tokens in their own "
        "cross-attention (the last 512 context tokens are the text)",
)

SKYREELS_DF = PipelineCase(
    name="SkyReelsV2DiffusionForcingPipeline",
    build=_skyreels_df,
    call=lambda: _wan_call(ar_step=0),
    calls=2 * STEPS,
    how="diffusion forcing (synchronous, ar_step 0): per-frame timesteps [B, frames] from a step matrix, each "
        "latent frame stepped by its own deepcopy of the scheduler (the pipeline's own scheduler never steps)",
)


# -- LTX-Video -----------------------------------------------------------------------------------------
# The pipelines want sides divisible by 32: 9 frames of 32x32, an 8x VAE -> 2 latent frames of 4x4
# (32 tokens, patch 1); CFG batched: one call a step.

LTX_SIDE, LTX_FRAMES = 32, 9


def _ltx():
    from diffusers import LTXPipeline

    return parts.tiny_ltx(LTXPipeline)


def _ltx_i2v():
    from diffusers import LTXImageToVideoPipeline

    return parts.tiny_ltx(LTXImageToVideoPipeline)


def _ltx_call(**extra) -> dict:
    return {
        **dict(
            prompt=PROMPT, negative_prompt=NEGATIVE, height=LTX_SIDE, width=LTX_SIDE, num_frames=LTX_FRAMES,
            num_inference_steps=STEPS, guidance_scale=3.0, max_sequence_length=8, generator=_generator(),
            output_type="np",
        ),
        **extra,
    }


LTX = PipelineCase(
    name="LTXPipeline",
    build=_ltx,
    call=_ltx_call,
    calls=STEPS,
    how="LTX-Video text-to-video: patchified tokens [B, N, C], CFG batched in one 'cond_uncond' call a step",
    saveable=True,
    generate_args=("--frames", "9", "--height", "32", "--width", "32"),
)

LTX_I2V = PipelineCase(
    name="LTXImageToVideoPipeline",
    build=_ltx_i2v,
    call=lambda: _ltx_call(image=_image(side=LTX_SIDE)),
    calls=STEPS,
    how="LTX I2V: the image's latent frame replaces the first frame's tokens, per-token timesteps [B, N] "
        "(0 on the condition tokens), the pipeline steps only the other tokens",
)


# -- LTX-2 ---------------------------------------------------------------------------------------------
# 9 frames of 32x32 through an 8x VAE: 2 latent frames of 4x4 (32 video tokens) and 9 audio tokens.


def _ltx2():
    from diffusers import LTX2Pipeline

    return parts.tiny_ltx2(LTX2Pipeline)


def _ltx2_call(**extra) -> dict:
    return {
        **dict(
            prompt=PROMPT, negative_prompt=NEGATIVE, height=32, width=32, num_frames=9, frame_rate=25.0,
            num_inference_steps=STEPS, max_sequence_length=8, spatio_temporal_guidance_blocks=[1],
            generator=_generator(), output_type="np",
        ),
        **extra,
    }


LTX2 = PipelineCase(
    name="LTX2Pipeline",
    build=_ltx2,
    call=_ltx2_call,
    calls=3 * STEPS,
    how="LTX-2 video + audio: three calls a step in their own contexts, CFG batched ('cond_uncond'), "
        "spatio-temporal guidance ('uncond_stg', block 1's self-attention skipped) and modality isolation "
        "('uncond_modality', no audio-video cross-attention); video and audio tokens both predicted",
)


def _ltx2_i2v():
    from diffusers import LTX2ImageToVideoPipeline

    return parts.tiny_ltx2(LTX2ImageToVideoPipeline)


LTX2_I2V = PipelineCase(
    name="LTX2ImageToVideoPipeline",
    build=_ltx2_i2v,
    call=lambda: _ltx2_call(image=_image(side=32), image_crf=0),  # no H.264 re-compression (needs PyAV)
    calls=3 * STEPS,
    how="LTX-2 I2V: the image's latent frame replaces the first frame's video tokens with per-token timesteps "
        "(0 there), three guidance calls a step as in LTX2Pipeline",
)

LTX2_CFG_ONLY = PipelineCase(
    name="LTX2Pipeline-cfg-only",
    build=_ltx2,
    call=lambda: _ltx2_call(stg_scale=0.0, modality_scale=1.0, audio_stg_scale=0.0, audio_modality_scale=1.0),
    calls=STEPS,
    how="LTX-2 with CFG alone: one batched call a step",
)

# -- CogVideoX -----------------------------------------------------------------------------------------


def _cogvideox():
    from diffusers import CogVideoXPipeline

    return parts.tiny_cogvideox(CogVideoXPipeline)


def _cogvideox_i2v():
    from diffusers import CogVideoXImageToVideoPipeline

    return parts.tiny_cogvideox(CogVideoXImageToVideoPipeline, image_to_video=True)


def _cogvideox_call(**extra) -> dict:
    return {
        **dict(
            prompt=PROMPT, negative_prompt=NEGATIVE, height=32, width=32, num_frames=9,
            num_inference_steps=STEPS, guidance_scale=6.0, max_sequence_length=226, generator=_generator(),
            output_type="np",
        ),
        **extra,
    }


COGVIDEOX = PipelineCase(
    name="CogVideoXPipeline",
    build=_cogvideox,
    call=_cogvideox_call,
    calls=STEPS,
    how="CogVideoX text-to-video: text and video tokens joined in every block, CFG batched in one call a step; "
        "the DDIM scheduler has no step index, so tap counts the calls and watches the timestep",
    saveable=True,
    generate_args=("--frames", "9", "--height", "32", "--width", "32"),
)


def _cogvideox_v2v():
    from diffusers import CogVideoXVideoToVideoPipeline

    return parts.tiny_cogvideox(CogVideoXVideoToVideoPipeline)


COGVIDEOX_V2V = PipelineCase(
    name="CogVideoXVideoToVideoPipeline",
    build=_cogvideox_v2v,
    call=lambda: {
        **{k: v for k, v in _cogvideox_call(num_inference_steps=6).items() if k != "num_frames"},
        "video": _video(frames=9, side=32), "strength": 0.7,
    },
    calls=int(6 * 0.7),
    how="strength 0.7 of 6 steps with DDIM (no step index): the run starts at step 2 and tap, watching the "
        "timestep, counts the 4 steps run and predicts some",
)

COGVIDEOX_I2V = PipelineCase(
    name="CogVideoXImageToVideoPipeline",
    build=_cogvideox_i2v,
    call=lambda: _cogvideox_call(image=_image(side=32)),
    calls=STEPS,
    how="CogVideoX I2V: the image latents (first frame, zeros after) concatenated on channels, learned "
        "positions and RoPE; DPM scheduler (also no step index)",
)

CASES = [
    WAN, WAN_22_TWO_EXPERTS, WAN_I2V, WAN_FLF2V, WAN_22_I2V, WAN_VACE, WAN_VACE_REFERENCE, WAN_V2V, WAN_ANIMATE,
    WAN_ANIMATE_SEGMENTS, SKYREELS, SKYREELS_I2V, SKYREELS_DF, LTX, LTX_I2V, LTX2, LTX2_I2V, LTX2_CFG_ONLY,
    COGVIDEOX, COGVIDEOX_I2V, COGVIDEOX_V2V,
]
