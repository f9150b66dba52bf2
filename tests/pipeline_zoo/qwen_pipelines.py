"""Pipeline cases: see pipeline_zoo/__init__.py. Qwen-Image (text-to-image with true CFG, image-to-image,
inpainting, editing with reference-image tokens, ControlNet), Z-Image and Lumina2."""

from __future__ import annotations

from pipeline_zoo import PipelineCase
from pipeline_zoo.qwen_pipelines_parts import (
    SIZE, generator, half_mask, picture, qwen_components, qwen_edit_vae, qwen_processor, qwen_transformer, wake,
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


def _qwen(pipeline: str, **parts):
    import diffusers

    return getattr(diffusers, pipeline)(**{**qwen_components(), **parts})


def _qwen_edit(pipeline: str):
    components = qwen_components()
    return _qwen(pipeline, vae=qwen_edit_vae(), processor=qwen_processor(components["tokenizer"]))


def _qwen_controlnet():
    from diffusers import QwenImageControlNetModel

    controlnet = wake(QwenImageControlNetModel(
        patch_size=2, in_channels=16, out_channels=4, num_layers=1, attention_head_dim=8, num_attention_heads=2,
        joint_attention_dim=16, axes_dims_rope=(2, 2, 4),
    ).eval())
    return _qwen("QwenImageControlNetPipeline", controlnet=controlnet)


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
    call=lambda: _qwen_call(image=picture(), strength=0.5, negative_prompt=None),
    calls=3,
    how="strength 0.5 starts the run half-way (3 of 6 steps, no negative prompt: one call a step); the "
        "scheduler's begin index is 3, and tap counts the 3 calls and predicts the middle one",
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
    how="reference-image tokens: the reference image (resized to 1024x1024 by the pipeline) is encoded to 256 "
        "packed tokens appended after the 16 target tokens on every call (img_shapes lists both); tap forecasts "
        "the whole joined image stream, reference tokens included, and the pipeline keeps only the first 16; the "
        "prompt goes through Qwen2.5-VL with the image's vision tokens; true CFG, 2 calls a step",
)

QWEN_EDIT_PLUS = PipelineCase(
    name="QwenImageEditPlusPipeline",
    build=lambda: _qwen_edit("QwenImageEditPlusPipeline"),
    call=lambda: _qwen_call(image=[picture(1), picture(2)], height=EDIT_SIZE, width=EDIT_SIZE, output_type="latent"),
    calls=2 * STEPS,
    how="two reference images: each is encoded (1024x1024) and packed, 2 x 256 reference tokens after the 16 "
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

CASES = [QWEN_IMAGE, QWEN_IMG2IMG, QWEN_INPAINT, QWEN_EDIT, QWEN_EDIT_PLUS, QWEN_CONTROLNET]
