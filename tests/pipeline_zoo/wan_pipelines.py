"""Pipeline cases: see pipeline_zoo/__init__.py.

Wan 2.1 / 2.2 (text-to-video, two experts, image-to-video, first-last-frame, VACE, video-to-video,
Animate), SkyReels-V2, LTX-Video, LTX-2 and CogVideoX pipelines, tiny: 5 video frames of 16x16
(a 4-channel Wan VAE, 4x spatial and 2x temporal: 3 latent frames of 4x4, 12 tokens after the
1x2x2 patch), 5 steps, a one-layer text encoder over the word-level tokenizer.
"""

from __future__ import annotations

import numpy as np
import PIL.Image
import torch

from pipeline_zoo import PipelineCase
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
    parts = tiny_wan_pipeline().components
    return {name: parts[name] for name in ("vae", "text_encoder", "tokenizer", "scheduler")}


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
    how="Wan 2.2 A14B: transformer (high noise) then transformer_2 (low noise) past boundary_ratio 0.5; "
        "both hooked, their calls counted together as the run's steps",
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
    how="Wan 2.1 I2V: condition frames concatenated to the latents on channels (no extra tokens), "
        "CLIP image tokens joined to the text tokens; the image tokens' residual predicted as usual",
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
        "(0 on the condition tokens); tap reads the step from the pipeline, not a scalar timestep",
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
    how="strength 0.7 of 6 steps: the run starts at step 2 (4 steps, 8 calls with CFG); tap counts the steps "
        "the pipeline runs and forecasts from the first of them",
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
    parts = {**_wan_parts(), "vae": vae}
    return _ftfy_optional(WanAnimatePipeline)(
        **parts, image_encoder=image_encoder, image_processor=CLIPImageProcessor(crop_size=8, size=8),
        transformer=transformer,
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
    how="Animate: the reference image's latent frame prepended (one more frame of tokens) and pose latents "
        "added to the patch embedding; the face adapter adds face features to the hidden states after each "
        "block, which the wan-animate adapter sums per block so a predicted step adds them once",
)

CASES = [WAN, WAN_22_TWO_EXPERTS, WAN_I2V, WAN_FLF2V, WAN_22_I2V, WAN_VACE, WAN_VACE_REFERENCE, WAN_V2V, WAN_ANIMATE]
