"""Pipeline cases: see pipeline_zoo/__init__.py. Qwen-Image (text-to-image with true CFG, image-to-image,
inpainting, editing with reference-image tokens, ControlNet), Z-Image and Lumina2."""

from __future__ import annotations

from pipeline_zoo import PipelineCase
from pipeline_zoo.qwen_pipelines_parts import (
    SIZE, generator, half_mask, lumina2_components, picture, qwen_components, qwen_edit_vae, qwen_processor, wake,
    z_image_components, z_image_controlnet,
)

STEPS = 6
PROMPT = "a red cat"
NEGATIVE = "a blue dog"
EDIT_SIZE = 128  # the edit VAE downsamples 16x: 8x8 latents, 4x4 = 16 target tokens


def _qwen_call(**extra) -> dict:
    """Qwen's true CFG: a negative prompt and ``true_cfg_scale > 1`` run the transformer twice a step."""
    return {
        "prompt": PROMPT, "negative_prompt": NEGATIVE, "true_cfg_scale": 4.0, "num_inference_steps": STEPS,
        "height": SIZE, "width": SIZE, "max_sequence_length": 8, "generator": generator(), "output_type": "np",
        **extra,
    }


def _seeded(call: dict) -> dict:
    """Seed torch's global generator too: QwenImageControlNetInpaintPipeline samples the VAE posterior of the
    masked image without the call's generator (``latent_dist.sample()``), so runs differ unless it is seeded."""
    import torch

    torch.manual_seed(0)
    return call


def _qwen(pipeline: str, **parts):
    import diffusers

    return getattr(diffusers, pipeline)(**{**qwen_components(), **parts})


def _qwen_edit(pipeline: str):
    components = qwen_components()
    return _qwen(pipeline, vae=qwen_edit_vae(), processor=qwen_processor(components["tokenizer"]))


def _qwen_controlnet(pipeline: str = "QwenImageControlNetPipeline", extra_condition_channels: int = 0):
    """A 1-block ControlNet; the inpainting one takes the packed mask too (1 channel x 2x2 patches = 4 more)."""
    from diffusers import QwenImageControlNetModel

    controlnet = wake(QwenImageControlNetModel(
        patch_size=2, in_channels=16, out_channels=4, num_layers=1, attention_head_dim=8, num_attention_heads=2,
        joint_attention_dim=16, axes_dims_rope=(2, 2, 4), extra_condition_channels=extra_condition_channels,
    ).eval())
    return _qwen(pipeline, controlnet=controlnet)


QWEN_IMAGE = PipelineCase(
    name="QwenImagePipeline",
    build=lambda: _qwen("QwenImagePipeline"),
    call=_qwen_call,
    calls=2 * STEPS,
    how="true CFG: a negative prompt and true_cfg_scale 4 call the transformer twice a step (in cache contexts "
        "'cond' and 'uncond', on different prompts), each call counted as a step and forecast from its own history",
    saveable=True,
    generate_args=("--height", str(SIZE), "--width", str(SIZE)),
)

# strength 0.5 of 6 steps: get_timesteps starts at t_start = int(6 - 6 * 0.5) = 3, so 3 steps, one call each
QWEN_IMG2IMG = PipelineCase(
    name="QwenImageImg2ImgPipeline",
    build=lambda: _qwen("QwenImageImg2ImgPipeline"),
    call=lambda: _qwen_call(image=picture(), strength=0.5, negative_prompt=None, true_cfg_scale=1.0),
    calls=3,
    how="strength 0.5 starts the run half-way (3 of 6 steps, no negative prompt: one call a step); the "
        "scheduler's begin index is 3: tap reads step indices 3-5 of 6, runs the run's first call in full and "
        "predicts the other two",
)

# strength 0.7 of 6 steps: t_start = int(6 - 4.2) = 1, so 5 steps (not int(6 * 0.7) = 4), two calls each
QWEN_INPAINT = PipelineCase(
    name="QwenImageInpaintPipeline",
    build=lambda: _qwen("QwenImageInpaintPipeline"),
    call=lambda: _qwen_call(image=picture(), mask_image=half_mask(), strength=0.7),
    calls=2 * 5,
    how="inpainting at strength 0.7 with true CFG: 5 of 6 steps (t_start = int(6 - 4.2) = 1), two calls each; "
        "the pipeline blends the kept region back into the latents after every step, outside the transformer",
)

QWEN_EDIT = PipelineCase(
    name="QwenImageEditPipeline",
    build=lambda: _qwen_edit("QwenImageEditPipeline"),
    call=lambda: _qwen_call(image=picture(), height=EDIT_SIZE, width=EDIT_SIZE, output_type="latent"),
    calls=2 * STEPS,
    how="reference-image tokens: the reference image (resized to 1024x1024 by the pipeline) is encoded to 1024 "
        "packed tokens appended after the 16 target tokens on every call (img_shapes lists both); tap forecasts "
        "the whole joined image stream, reference tokens included, and the pipeline keeps only the first 16; the "
        "prompt goes through Qwen2.5-VL with the image's vision tokens; true CFG, 2 calls a step",
)

QWEN_EDIT_PLUS = PipelineCase(
    name="QwenImageEditPlusPipeline",
    build=lambda: _qwen_edit("QwenImageEditPlusPipeline"),
    call=lambda: _qwen_call(image=[picture(1), picture(2)], height=EDIT_SIZE, width=EDIT_SIZE, output_type="latent"),
    calls=2 * STEPS,
    how="two reference images: each is encoded (1024x1024) and packed, 2 x 1024 reference tokens after the 16 "
        "target tokens, and both go to Qwen2.5-VL as 'Picture 1/2' vision tokens; tap forecasts the joined "
        "stream; true CFG, 2 calls a step",
)

QWEN_CONTROLNET = PipelineCase(
    name="QwenImageControlNetPipeline",
    build=_qwen_controlnet,
    call=lambda: _qwen_call(control_image=picture(3), controlnet_conditioning_scale=0.7),
    calls=2 * STEPS,
    how="ControlNet: a 1-block QwenImageControlNetModel (zero-initialised projections given small random values) "
        "runs before each transformer call and its residual is added after each of the 2 blocks "
        "(controlnet_block_samples); tap hooks only the transformer and sums block residuals so the addition "
        "counts once; true CFG, 2 transformer calls a step (the ControlNet runs on the cond prompt for both)",
)

QWEN_CONTROLNET_INPAINT = PipelineCase(
    name="QwenImageControlNetInpaintPipeline",
    build=lambda: _qwen_controlnet("QwenImageControlNetInpaintPipeline", extra_condition_channels=4),
    call=lambda: _seeded(_qwen_call(control_image=picture(3), control_mask=half_mask(),
                                    controlnet_conditioning_scale=0.7)),
    calls=2 * STEPS,
    how="ControlNet inpainting: the ControlNet sees the masked image's latents and the mask (extra condition "
        "channels) and its residual is added after each block as in QwenImageControlNetPipeline; the denoiser "
        "runs the full 6 steps (no strength), true CFG, 2 calls a step",
)


# -- Z-Image: CFG batched into one call (cond and uncond as a list of per-sample latents and captions) ---


def _z_image(pipeline: str, **parts):
    import diffusers

    return getattr(diffusers, pipeline)(**{**z_image_components(), **parts})


def _z_image_controlnet():
    from diffusers import ZImageControlNetPipeline

    components = z_image_components()
    return ZImageControlNetPipeline(**components, controlnet=z_image_controlnet(components["transformer"]))


def _z_image_call(**extra) -> dict:
    """CFG with a negative prompt shorter than the prompt: one call a step on a batch of two samples whose
    captions differ in length (Z-Image pads each sample's tokens to a multiple of 32 and masks the pads)."""
    return {
        "prompt": PROMPT, "negative_prompt": "a dog", "guidance_scale": 4.0, "num_inference_steps": STEPS,
        "height": SIZE, "width": SIZE, "max_sequence_length": 16, "generator": generator(), "output_type": "np",
        **extra,
    }


Z_IMAGE = PipelineCase(
    name="ZImagePipeline",
    build=lambda: _z_image("ZImagePipeline"),
    call=_z_image_call,
    calls=STEPS,
    how="CFG in one call on a list of 2 per-sample latents and captions of different lengths (11 and 10 tokens "
        "after the chat template, padded to 32 and masked in the unified sequence), no cache context: one step "
        "a call",
    saveable=True,
    generate_args=("--height", str(SIZE), "--width", str(SIZE)),
)

# strength 0.5 of 6 steps: t_start = int(6 - 3) = 3, so 3 steps, one (batched CFG) call each
Z_IMAGE_IMG2IMG = PipelineCase(
    name="ZImageImg2ImgPipeline",
    build=lambda: _z_image("ZImageImg2ImgPipeline"),
    call=lambda: _z_image_call(image=picture(), strength=0.5),
    calls=3,
    how="strength 0.5: 3 of 6 steps (scheduler begin index 3), each one call with CFG batched; tap runs the "
        "run's first call in full and predicts the other two",
)

Z_IMAGE_CONTROLNET = PipelineCase(
    name="ZImageControlNetPipeline",
    build=_z_image_controlnet,
    call=lambda: _z_image_call(control_image=picture(3), controlnet_conditioning_scale=0.7),
    calls=STEPS,
    how="ControlNet: ZImageControlNetModel (1 control block, 1 control refiner block; it shares the "
        "transformer's embedders and refiners) returns a dict {0: hint} added to the unified stream after block "
        "0; tap hooks only the transformer, sums block residuals so the hint counts once, CFG batched",
)

# cfg_truncation 0.5: CFG stops once (1000 - t) / 1000 > 0.5, here after step 2 of 6
Z_IMAGE_CFG_TRUNCATION = PipelineCase(
    name="ZImagePipeline-cfg-truncation",
    build=lambda: _z_image("ZImagePipeline"),
    call=lambda: _z_image_call(cfg_truncation=0.5),
    calls=STEPS,
    how="CFG truncation: the first steps call the transformer on 2 samples (cond, uncond), the later ones on the "
        "cond sample alone; the stack input's batch changes mid-run, so tap runs that step in full and restarts "
        "the forecast's history from it",
)

# strength 0.8 of 6 steps: t_start = int(6 - 4.8) = 1, so 5 steps
Z_IMAGE_INPAINT = PipelineCase(
    name="ZImageInpaintPipeline",
    build=lambda: _z_image("ZImageInpaintPipeline"),
    call=lambda: _z_image_call(image=picture(), mask_image=half_mask(), strength=0.8),
    calls=5,
    how="inpainting at strength 0.8: 5 of 6 steps (t_start = int(6 - 4.8) = 1), CFG batched; the kept region is "
        "blended back into the latents after every step, outside the transformer",
)

LUMINA2 = PipelineCase(
    name="Lumina2Pipeline",
    build=lambda: __import__("diffusers").Lumina2Pipeline(**lumina2_components()),
    call=lambda: {
        "prompt": PROMPT, "negative_prompt": "a dog", "guidance_scale": 4.0, "num_inference_steps": STEPS,
        "cfg_trunc_ratio": 0.5, "system_prompt": "", "height": SIZE, "width": SIZE, "max_sequence_length": 8,
        "generator": generator(), "output_type": "np",
    },
    calls=STEPS + 3,
    how="sequential CFG without a cache context, truncated: the cond and uncond calls of a step come one after "
        "the other at the same scheduler step index, and with cfg_trunc_ratio 0.5 the uncond call runs only on "
        "steps 0-2 (9 calls over 6 steps); tap must keep the two calls' histories apart and count all 9; padded "
        "captions (max_length 8) with a mask",
    saveable=True,
    generate_args=("--height", str(SIZE), "--width", str(SIZE)),
)

CASES = [
    QWEN_IMAGE, QWEN_IMG2IMG, QWEN_INPAINT, QWEN_EDIT, QWEN_EDIT_PLUS, QWEN_CONTROLNET, QWEN_CONTROLNET_INPAINT,
    Z_IMAGE, Z_IMAGE_IMG2IMG, Z_IMAGE_CONTROLNET, Z_IMAGE_CFG_TRUNCATION, Z_IMAGE_INPAINT, LUMINA2,
]
