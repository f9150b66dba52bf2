"""Pipeline cases: see pipeline_zoo/__init__.py.

FLUX.1 (text-to-image with and without true CFG, image-to-image, inpainting, Kontext, ControlNet,
Fill), FLUX.2 [dev] and [klein] (text-to-image and with reference images), Chroma (text-to-image,
image-to-image, inpainting), Stable Diffusion 3 (text-to-image, image-to-image, inpainting,
ControlNet), AuraFlow and HiDream-I1, each a tiny pipeline: the transformers use the configs of
``tests/zoo`` (input channels changed where a pipeline concatenates conditions), text encoders are
one- to three-layer ``transformers`` models over the word-level tokenizer of
``tests/tiny_pipelines.py``, and the VAEs have one 4-channel block (no downsampling), so that the
images are 16x16 pixels (FLUX.2's reference images 64x64, the least it takes).
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline_zoo import PipelineCase
from tiny_pipelines import VOCABULARY, tiny_tokenizer

SIZE = 16  # image height and width, in pixels (the tiny VAEs do not downsample)
STEPS = 6
TEXT = 8  # tokens per prompt
PROMPT = "a red cat on the moon"


# -- shared parts ------------------------------------------------------------------------------------


def _tokenizer(length: int = TEXT):
    """The word-level tokenizer, padding to ``length`` (CLIP-style pipelines read ``model_max_length``)."""
    tokenizer = tiny_tokenizer()
    tokenizer.model_max_length = length
    return tokenizer


def _clip(width: int = 32, projection: int | None = None):
    """A one-layer CLIP text encoder; with ``projection`` the ``CLIPTextModelWithProjection`` (SD3)."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=len(VOCABULARY), hidden_size=width, intermediate_size=2 * width, num_hidden_layers=1,
        num_attention_heads=2, max_position_embeddings=TEXT, projection_dim=projection or width,
        bos_token_id=0, eos_token_id=1, pad_token_id=0, hidden_act="gelu",
    )
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config).eval()


def _t5(width: int = 32):
    """A one-layer T5 encoder."""
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(
        vocab_size=len(VOCABULARY), d_model=width, d_kv=8, d_ff=2 * width, num_layers=1, num_heads=2,
        relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )).eval()


def _vae(latent_channels: int = 1, **extra):
    """An ``AutoencoderKL`` with one 4-channel block: no downsampling (vae_scale_factor 1)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        sample_size=SIZE, in_channels=3, out_channels=3, block_out_channels=(4,), layers_per_block=1,
        latent_channels=latent_channels, norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False,
        shift_factor=0.0609, scaling_factor=1.5035, **extra,
    ).eval()


def _picture(seed: int, size: int = SIZE):
    """A small random RGB picture (PIL)."""
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _mask(size: int = SIZE):
    """A white square (the part to repaint) in the middle of a black mask (PIL, mode L)."""
    from PIL import Image

    pixels = np.zeros((size, size), dtype=np.uint8)
    pixels[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 255
    return Image.fromarray(pixels, mode="L")


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _text_to_image(**extra) -> dict:
    return {
        "prompt": PROMPT, "num_inference_steps": STEPS, "height": SIZE, "width": SIZE,
        "generator": _generator(), "output_type": "np", **extra,
    }


IMAGE_ARGS = ("--height", str(SIZE), "--width", str(SIZE))


# -- FLUX.1 ------------------------------------------------------------------------------------------


def _flux_transformer(**changes):
    """The zoo's FLUX.1 transformer config (tests/zoo/flux_family.py), with ``changes``."""
    from diffusers import FluxTransformer2DModel

    config = dict(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=2, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=(4, 4, 8),
    )
    return FluxTransformer2DModel(**{**config, **changes}).eval()


def _flux_parts(latent_channels: int = 1, **transformer) -> dict:
    from diffusers import FlowMatchEulerDiscreteScheduler

    return {
        "scheduler": FlowMatchEulerDiscreteScheduler(), "vae": _vae(latent_channels),
        "text_encoder": _clip(), "tokenizer": _tokenizer(), "text_encoder_2": _t5(), "tokenizer_2": _tokenizer(),
        "transformer": _flux_transformer(**{"in_channels": 4 * latent_channels, **transformer}),
    }


def _flux_like(pipeline: str):
    """A builder of diffusers' ``pipeline`` (a FLUX.1 pipeline class name) on the tiny FLUX parts."""

    def build():
        import diffusers

        return getattr(diffusers, pipeline)(**_flux_parts(), image_encoder=None, feature_extractor=None)

    return build


_flux = _flux_like("FluxPipeline")


FLUX = PipelineCase(
    name="FluxPipeline",
    build=_flux,
    call=lambda: _text_to_image(max_sequence_length=TEXT),
    calls=STEPS,
    how="text-to-image inside the pipeline's own cache_context('cond'); also `tap generate` from a folder",
    saveable=True,
    generate_args=IMAGE_ARGS,
)

FLUX_TRUE_CFG = PipelineCase(
    name="FluxPipeline-true-cfg",
    build=_flux,
    call=lambda: _text_to_image(max_sequence_length=TEXT, negative_prompt="a blue dog", true_cfg_scale=4.0),
    calls=2 * STEPS,
    how="true CFG: two calls per step, in cache contexts 'cond' and 'uncond', each counted as a step",
)


_flux_img2img = _flux_like("FluxImg2ImgPipeline")


FLUX_IMG2IMG = PipelineCase(
    name="FluxImg2ImgPipeline",
    build=_flux_img2img,
    call=lambda: _text_to_image(max_sequence_length=TEXT, image=_picture(1), strength=0.5, num_inference_steps=10),
    calls=5,  # int(10 * 0.5): the run starts at step 5 of 10
    how="strength 0.5: the run starts half-way (5 of 10 timesteps), tap counts those 5 calls as one generation",
)


_flux_inpaint = _flux_like("FluxInpaintPipeline")


FLUX_INPAINT = PipelineCase(
    name="FluxInpaintPipeline",
    build=_flux_inpaint,
    call=lambda: _text_to_image(
        max_sequence_length=TEXT, image=_picture(1), mask_image=_mask(), strength=0.6, num_inference_steps=10,
    ),
    calls=6,  # int(10 * 0.6)
    how="inpainting at strength 0.6 (6 of 10 timesteps); the pipeline blends the known region back after "
        "each step, outside the transformer, so predicted steps only change the masked region's trajectory",
)


_flux_kontext = _flux_like("FluxKontextPipeline")


FLUX_KONTEXT = PipelineCase(
    name="FluxKontextPipeline",
    build=_flux_kontext,
    call=lambda: _text_to_image(max_sequence_length=TEXT, image=_picture(1), _auto_resize=False, max_area=SIZE * SIZE),
    calls=STEPS,
    how="reference-image tokens: the reference latents are concatenated after the noisy latents (twice the image "
        "tokens, ids with index 1), the block stack's residual covers both and tap predicts them together; the "
        "pipeline keeps only the first half of the output",
)


def _flux_controlnet():
    from diffusers import FluxControlNetModel, FluxControlNetPipeline

    controlnet = FluxControlNetModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=(4, 4, 8),
    ).eval()
    return FluxControlNetPipeline(**_flux_parts(), controlnet=controlnet)


FLUX_CONTROLNET = PipelineCase(
    name="FluxControlNetPipeline",
    build=_flux_controlnet,
    call=lambda: _text_to_image(
        max_sequence_length=TEXT, control_image=_picture(2), controlnet_conditioning_scale=0.7,
    ),
    calls=STEPS,
    how="ControlNet: the ControlNet runs every step (not hooked: only `transformer` is a denoiser) and its "
        "per-block residuals enter between the transformer's blocks; tap's flux adapter sums them into the "
        "residual on full steps so that predicted steps add them once",
)


def _flux_fill():
    from diffusers import FluxFillPipeline

    # in_channels: 4 (packed latents) + 4 (packed masked-image latents) + 4 (the mask, vae_scale_factor**2 * 4)
    parts = _flux_parts(in_channels=12, out_channels=4)
    return FluxFillPipeline(**parts)


FLUX_FILL = PipelineCase(
    name="FluxFillPipeline",
    build=_flux_fill,
    call=lambda: _text_to_image(max_sequence_length=TEXT, image=_picture(1), mask_image=_mask(), guidance_scale=30.0),
    calls=STEPS,
    how="Fill: masked-image latents and the mask are concatenated to the latents along channels (in_channels 12, "
        "out_channels 4), so the image tokens carry the condition and tap predicts them as usual",
)



# -- FLUX.2 [klein] ----------------------------------------------------------------------------------

QWEN3_LAYERS = (1, 2)  # text_encoder_out_layers: the prompt embedding is these hidden states side by side (2 x 16)


def _qwen3_tokenizer():
    """The word-level tokenizer with a chat template that keeps only the messages' text."""
    tokenizer = _tokenizer()
    tokenizer.chat_template = "{% for message in messages %}{{ message['content'] }}{% endfor %}"
    return tokenizer


def _flux2_vae():
    from diffusers import AutoencoderKLFlux2

    return AutoencoderKLFlux2(
        sample_size=SIZE, in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",),
        up_block_types=("UpDecoderBlock2D",), block_out_channels=(4,), layers_per_block=1, latent_channels=1,
        norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False,
    ).eval()


def _flux2_transformer(**changes):
    """The zoo's FLUX.2 config (tests/zoo/flux_family.py), with ``changes``."""
    from diffusers import Flux2Transformer2DModel

    return Flux2Transformer2DModel(**{
        "patch_size": 1, "in_channels": 4, "num_layers": 1, "num_single_layers": 2, "attention_head_dim": 16,
        "num_attention_heads": 2, "joint_attention_dim": 32, "timestep_guidance_channels": 256,
        "axes_dims_rope": (4, 4, 4, 4), **changes,
    }).eval()


def _flux2_klein():
    from diffusers import FlowMatchEulerDiscreteScheduler, Flux2KleinPipeline
    from transformers import Qwen3Config, Qwen3ForCausalLM

    text_encoder = Qwen3ForCausalLM(Qwen3Config(
        vocab_size=len(VOCABULARY), hidden_size=16, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, head_dim=8, max_position_embeddings=TEXT, pad_token_id=0,
    )).eval()
    vae = _flux2_vae()
    # the zoo's FLUX.2 config (tests/zoo/flux_family.py), without the guidance embedding (klein takes none)
    transformer = _flux2_transformer(guidance_embeds=False)
    return Flux2KleinPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text_encoder, tokenizer=_qwen3_tokenizer(),
        transformer=transformer,
    )


def _flux2_klein_call(**extra) -> dict:
    return _text_to_image(max_sequence_length=TEXT, text_encoder_out_layers=QWEN3_LAYERS, guidance_scale=4.0, **extra)


FLUX2_KLEIN = PipelineCase(
    name="Flux2KleinPipeline",
    build=_flux2_klein,
    call=_flux2_klein_call,
    calls=2 * STEPS,
    how="FLUX.2 [klein] text-to-image with CFG (guidance 4, not distilled): calls in cache contexts 'cond' and "
        "'uncond', 4-axis position ids",
)

FLUX2_KLEIN_EDIT = PipelineCase(
    name="Flux2KleinPipeline-reference",
    build=_flux2_klein,
    call=lambda: _flux2_klein_call(image=_picture(1, size=64)),  # FLUX.2 takes reference images of 64 px or more
    calls=2 * STEPS,
    how="reference-image tokens: the reference image's latents are concatenated after the noisy latents (ids at "
        "time index 10), tap predicts them with the rest and the pipeline keeps the first part of the output",
)



# -- FLUX.2 [dev] ------------------------------------------------------------------------------------


def _mistral3_tokenizer():
    """The word-level tokenizer standing in for the Mistral 3 processor: the pipeline only calls its
    ``apply_chat_template`` on a batch of conversations; the template keeps the user's text."""
    tokenizer = _tokenizer()
    tokenizer.chat_template = (
        "{% for message in messages %}{% if message['role'] == 'user' %}{% for part in message['content'] %}"
        "{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}{% endfor %}"
    )
    return tokenizer


def _flux2():
    from diffusers import FlowMatchEulerDiscreteScheduler, Flux2Pipeline
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration

    text_encoder = Mistral3ForConditionalGeneration(Mistral3Config(
        text_config={
            "model_type": "mistral", "vocab_size": len(VOCABULARY), "hidden_size": 16, "intermediate_size": 16,
            "max_position_embeddings": TEXT, "num_attention_heads": 2, "num_hidden_layers": 2, "num_key_value_heads": 2,
            "head_dim": 8, "sliding_window": None, "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 0,
        },
        vision_config={
            "model_type": "pixtral", "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
            "intermediate_size": 16, "image_size": 16, "patch_size": 8, "num_channels": 3,
        },
        image_token_index=2, vision_feature_layer=-1,
    )).eval()
    vae = _flux2_vae()
    # the zoo's FLUX.2 config (tests/zoo/flux_family.py): guidance-distilled, no CFG
    transformer = _flux2_transformer()
    return Flux2Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text_encoder,
        tokenizer=_mistral3_tokenizer(), transformer=transformer,
    )


FLUX2 = PipelineCase(
    name="Flux2Pipeline",
    build=_flux2,
    call=lambda: _text_to_image(max_sequence_length=TEXT, text_encoder_out_layers=QWEN3_LAYERS, guidance_scale=4.0),
    calls=STEPS,
    how="FLUX.2 [dev] text-to-image: guidance embedded (one call per step), no cache context",
)

FLUX2_EDIT = PipelineCase(
    name="Flux2Pipeline-reference",
    build=_flux2,
    call=lambda: _text_to_image(
        max_sequence_length=TEXT, text_encoder_out_layers=QWEN3_LAYERS, guidance_scale=4.0,
        image=[_picture(1, size=64), _picture(2, size=64)],
    ),
    calls=STEPS,
    how="two reference images: their latents (time indices 10 and 20) follow the noisy latents in the image "
        "tokens; tap predicts all of them, the pipeline keeps the noisy latents' part",
)



# -- Chroma ------------------------------------------------------------------------------------------


def _chroma_parts() -> dict:
    from diffusers import ChromaTransformer2DModel, FlowMatchEulerDiscreteScheduler

    # the zoo's Chroma config (tests/zoo/flux_family.py)
    transformer = ChromaTransformer2DModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=2, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, axes_dims_rope=(4, 4, 8), approximator_num_channels=8,
        approximator_hidden_dim=16, approximator_layers=1,
    ).eval()
    return {
        "scheduler": FlowMatchEulerDiscreteScheduler(), "vae": _vae(), "text_encoder": _t5(), "tokenizer": _tokenizer(),
        "transformer": transformer, "image_encoder": None, "feature_extractor": None,
    }


def _chroma():
    from diffusers import ChromaPipeline

    return ChromaPipeline(**_chroma_parts())


CHROMA = PipelineCase(
    name="ChromaPipeline",
    build=_chroma,
    call=lambda: _text_to_image(max_sequence_length=TEXT, negative_prompt="a blue dog", guidance_scale=4.0),
    calls=2 * STEPS,
    how="CFG without cache contexts: the conditional and unconditional calls alternate in one context (the "
        "prompt is T5 with an attention mask), every call counted as a step",
    saveable=True,
    generate_args=IMAGE_ARGS,
)

CHROMA_NO_CFG = PipelineCase(
    name="ChromaPipeline-no-cfg",
    build=_chroma,
    call=lambda: _text_to_image(max_sequence_length=TEXT, guidance_scale=1.0),
    calls=STEPS,
    how="guidance 1: one call per step and no cache context, the counterpart of ChromaPipeline's CFG",
)


def _chroma_img2img():
    from diffusers import ChromaImg2ImgPipeline

    return ChromaImg2ImgPipeline(**_chroma_parts())


CHROMA_IMG2IMG = PipelineCase(
    name="ChromaImg2ImgPipeline",
    build=_chroma_img2img,
    call=lambda: _text_to_image(
        max_sequence_length=TEXT, negative_prompt="a blue dog", guidance_scale=4.0, image=_picture(1),
        strength=0.5, num_inference_steps=10,
    ),
    calls=2 * 5,  # int(10 * 0.5) steps, two calls each (CFG)
    how="strength 0.5 with CFG and no cache context: 5 of 10 timesteps, two calls each",
)


def _chroma_inpaint():
    from diffusers import ChromaInpaintPipeline

    parts = _chroma_parts()
    # diffusers 0.42.1's ChromaInpaintPipeline reads transformer.config.guidance_embeds, which
    # ChromaTransformer2DModel's config does not have (AttributeError); Chroma embeds no guidance
    parts["transformer"].register_to_config(guidance_embeds=False)
    return ChromaInpaintPipeline(**parts)


CHROMA_INPAINT = PipelineCase(
    name="ChromaInpaintPipeline",
    build=_chroma_inpaint,
    call=lambda: _text_to_image(
        max_sequence_length=TEXT, negative_prompt="a blue dog", guidance_scale=4.0, image=_picture(1),
        mask_image=_mask(), strength=0.6, num_inference_steps=10,
    ),
    calls=2 * 6,  # int(10 * 0.6) steps, two calls each (CFG)
    how="inpainting at strength 0.6 with CFG and no cache context: 6 of 10 timesteps, two calls each",
)



# -- Stable Diffusion 3 ------------------------------------------------------------------------------


def _sd3_transformer(**changes):
    """The zoo's SD3 config (tests/zoo/dual_stream.py): SD3.5-style dual attention in block 0; 16x16 latents
    are 8x8 patches, the position embedding's full size."""
    from diffusers import SD3Transformer2DModel

    config = dict(
        sample_size=8, patch_size=2, in_channels=4, num_layers=2, attention_head_dim=8, num_attention_heads=2,
        joint_attention_dim=16, caption_projection_dim=16, pooled_projection_dim=8, out_channels=4,
        pos_embed_max_size=8, dual_attention_layers=(0,),
    )
    return SD3Transformer2DModel(**{**config, **changes}).eval()


def _sd3_parts(latent_channels: int = 4) -> dict:
    """Two 8-wide CLIP encoders (pooled projections 4 + 4 = 8), their prompt embeddings side by side (16)
    and padded to the 16-wide T5's, as SD3 joins them."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    return {
        "scheduler": FlowMatchEulerDiscreteScheduler(shift=3.0), "vae": _vae(latent_channels=latent_channels),
        "text_encoder": _clip(width=8, projection=4), "tokenizer": _tokenizer(),
        "text_encoder_2": _clip(width=8, projection=4), "tokenizer_2": _tokenizer(),
        "text_encoder_3": _t5(width=16), "tokenizer_3": _tokenizer(),
        "transformer": _sd3_transformer(in_channels=latent_channels, out_channels=latent_channels),
    }


def _sd3():
    from diffusers import StableDiffusion3Pipeline

    return StableDiffusion3Pipeline(**_sd3_parts(), image_encoder=None, feature_extractor=None)


SD3 = PipelineCase(
    name="StableDiffusion3Pipeline",
    build=_sd3,
    call=lambda: _text_to_image(max_sequence_length=TEXT, negative_prompt="a blue dog", guidance_scale=5.0),
    calls=STEPS,
    how="batched CFG (negative and positive prompt in one batch of 2, one call per step), no cache context; "
        "also `tap generate` from a folder",
    saveable=True,
    generate_args=IMAGE_ARGS,
)


def _sd3_img2img():
    from diffusers import StableDiffusion3Img2ImgPipeline

    return StableDiffusion3Img2ImgPipeline(**_sd3_parts(), image_encoder=None, feature_extractor=None)


SD3_IMG2IMG = PipelineCase(
    name="StableDiffusion3Img2ImgPipeline",
    build=_sd3_img2img,
    call=lambda: _text_to_image(
        max_sequence_length=TEXT, guidance_scale=5.0, image=_picture(1), strength=0.5, num_inference_steps=10,
    ),
    calls=5,  # int(10 * 0.5), CFG batched
    how="strength 0.5: 5 of 10 timesteps, batched CFG",
)


def _sd3_inpaint():
    from diffusers import StableDiffusion3InpaintPipeline

    # the inpainting pipeline takes 16 latent channels (or 33: SD3 inpainting models with mask and masked image)
    return StableDiffusion3InpaintPipeline(**_sd3_parts(latent_channels=16), image_encoder=None, feature_extractor=None)


SD3_INPAINT = PipelineCase(
    name="StableDiffusion3InpaintPipeline",
    build=_sd3_inpaint,
    call=lambda: _text_to_image(
        max_sequence_length=TEXT, guidance_scale=5.0, image=_picture(1), mask_image=_mask(), strength=0.6,
        num_inference_steps=10,
    ),
    calls=6,  # int(10 * 0.6), CFG batched
    how="inpainting at strength 0.6 (6 of 10 timesteps), batched CFG, the known region blended back each step",
)


def _sd3_controlnet():
    from diffusers import SD3ControlNetModel, StableDiffusion3ControlNetPipeline

    controlnet = SD3ControlNetModel(
        sample_size=8, patch_size=2, in_channels=4, num_layers=1, attention_head_dim=8, num_attention_heads=2,
        joint_attention_dim=16, caption_projection_dim=16, pooled_projection_dim=8, out_channels=4,
        pos_embed_max_size=8,
    ).eval()
    return StableDiffusion3ControlNetPipeline(**_sd3_parts(), controlnet=controlnet)


SD3_CONTROLNET = PipelineCase(
    name="StableDiffusion3ControlNetPipeline",
    build=_sd3_controlnet,
    call=lambda: _text_to_image(
        max_sequence_length=TEXT, guidance_scale=5.0, control_image=_picture(2), controlnet_conditioning_scale=0.7,
    ),
    calls=STEPS,
    how="ControlNet: its block samples are added after the transformer's blocks (one sample for two blocks); "
        "the ControlNet runs every step unhooked and tap's sd3 adapter sums the per-block residuals so that "
        "predicted steps add the control once",
)



# -- AuraFlow ----------------------------------------------------------------------------------------


def _aura_flow():
    from diffusers import AuraFlowPipeline, AuraFlowTransformer2DModel, FlowMatchEulerDiscreteScheduler
    from transformers import UMT5Config, UMT5EncoderModel

    text_encoder = UMT5EncoderModel(UMT5Config(
        vocab_size=len(VOCABULARY), d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=2,
        relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )).eval()
    # the zoo's AuraFlow config (tests/zoo/flux_family.py): 16x16 latents are 8x8 patches
    transformer = AuraFlowTransformer2DModel(
        sample_size=8, patch_size=2, in_channels=4, num_mmdit_layers=1, num_single_dit_layers=2,
        attention_head_dim=8, num_attention_heads=4, caption_projection_dim=32, joint_attention_dim=32,
        out_channels=4, pos_embed_max_size=64,
    ).eval()
    return AuraFlowPipeline(
        tokenizer=_tokenizer(), text_encoder=text_encoder, vae=_vae(latent_channels=4), transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(),
    )


AURA_FLOW = PipelineCase(
    name="AuraFlowPipeline",
    build=_aura_flow,
    call=lambda: _text_to_image(max_sequence_length=TEXT, negative_prompt="a blue dog", guidance_scale=3.5),
    calls=STEPS,
    how="batched CFG, no cache context; MMDiT then single-stream blocks on [text; image], the image part "
        "cut from the joined sequence",
)



# -- HiDream-I1 --------------------------------------------------------------------------------------


def _hidream():
    from diffusers import FlowMatchEulerDiscreteScheduler, HiDreamImagePipeline, HiDreamImageTransformer2DModel
    from transformers import LlamaConfig, LlamaForCausalLM

    # the four text encoders, tiny: two CLIPs (pooled projections 4 + 4 = text_emb_dim 8), an 8-wide T5
    # (caption_channels[0]) and a 3-layer, 4-wide Llama whose hidden states are llama_layers (0, 1, 2)
    llama = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(VOCABULARY), hidden_size=4, intermediate_size=8, num_hidden_layers=3, num_attention_heads=1,
        num_key_value_heads=1, head_dim=4, max_position_embeddings=TEXT, pad_token_id=1, bos_token_id=0,
        eos_token_id=1, attn_implementation="eager",  # the pipeline asks for attention weights
    )).eval()
    # the zoo's HiDream-I1 config (tests/zoo/flux_family.py): 16x16 latents are 8x8 patches
    transformer = HiDreamImageTransformer2DModel(
        patch_size=2, in_channels=4, out_channels=4, num_layers=1, num_single_layers=2, attention_head_dim=8,
        num_attention_heads=4, caption_channels=[8, 4], text_emb_dim=8, num_routed_experts=2,
        num_activated_experts=2, axes_dims_rope=(4, 2, 2), max_resolution=(32, 32), llama_layers=(0, 1, 2),
        force_inference_output=True,
    ).eval()
    pipe = HiDreamImagePipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), vae=_vae(latent_channels=4),
        text_encoder=_clip(width=8, projection=4), tokenizer=_tokenizer(),
        text_encoder_2=_clip(width=8, projection=4), tokenizer_2=_tokenizer(),
        text_encoder_3=_t5(width=8), tokenizer_3=_tokenizer(),
        text_encoder_4=llama, tokenizer_4=_tokenizer(), transformer=transformer,
    )
    # HiDream rescales every request to the area of default_sample_size latents squared (128: 1024 px at
    # vae_scale_factor 8); 16 keeps 16x16 pixels here
    pipe.default_sample_size = SIZE
    return pipe


HIDREAM = PipelineCase(
    name="HiDreamImagePipeline",
    build=_hidream,
    call=lambda: _text_to_image(max_sequence_length=TEXT, negative_prompt="a blue dog", guidance_scale=5.0),
    calls=STEPS,
    how="four text encoders (two CLIPs, T5, Llama layers); batched CFG, no cache context; the Llama layers' "
        "tokens are appended to and cut from the image tokens between blocks, passed through on predicted steps",
)


CASES = [
    FLUX, FLUX_TRUE_CFG, FLUX_IMG2IMG, FLUX_INPAINT, FLUX_KONTEXT, FLUX_CONTROLNET, FLUX_FILL,
    FLUX2_KLEIN, FLUX2_KLEIN_EDIT, FLUX2, FLUX2_EDIT,
    CHROMA, CHROMA_NO_CFG, CHROMA_IMG2IMG, CHROMA_INPAINT,
    SD3, SD3_IMG2IMG, SD3_INPAINT, SD3_CONTROLNET,
    AURA_FLOW, HIDREAM,
]
