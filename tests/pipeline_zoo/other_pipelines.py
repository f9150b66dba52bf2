"""Pipeline cases: see pipeline_zoo/__init__.py.

PixArt-Σ, Sana (text-to-image, ControlNet, video), HunyuanVideo, Mochi, Allegro, CogView4, Kandinsky 5
and Cosmos 2: tiny pipelines after diffusers' own pipeline tests, their transformers from the configs
of ``tests/zoo``, their text encoders from tiny ``transformers`` configs over the word-level tokenizer
of ``tiny_pipelines``.
"""

from __future__ import annotations

import torch

from pipeline_zoo import PipelineCase
from tiny_pipelines import VOCABULARY, tiny_tokenizer

PROMPT = "a red cat on the moon"
SIZE = 32


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tiny_vae_kl(latent_channels: int = 4, blocks: int = 3, **config):
    """An ``AutoencoderKL`` with ``blocks`` levels of 8 channels (2**(blocks-1) times smaller latents)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks, block_out_channels=(8,) * blocks, layers_per_block=1,
        latent_channels=latent_channels, norm_num_groups=4, sample_size=SIZE, **config,
    ).eval()


def tiny_t5(d_model: int = 16):
    """A one-layer T5 encoder over :data:`VOCABULARY`."""
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(
        vocab_size=len(VOCABULARY), d_model=d_model, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
        relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )).eval()


# -- PixArt-Σ: T5, DDIM (epsilon), learned variance (out_channels = 2 x latent channels) ----------------
def pixart_sigma():
    from diffusers import DDIMScheduler, PixArtSigmaPipeline, PixArtTransformer2DModel

    transformer = PixArtTransformer2DModel(
        sample_size=32, num_layers=2, patch_size=2, attention_head_dim=8, num_attention_heads=2, in_channels=4,
        cross_attention_dim=16, out_channels=8, attention_bias=True, activation_fn="gelu-approximate",
        num_embeds_ada_norm=1000, norm_type="ada_norm_single", norm_elementwise_affine=False, norm_eps=1e-6,
        use_additional_conditions=False, caption_channels=16,
    ).eval()
    # sample_size 32 is the smallest that `use_resolution_binning` (on by default, so in `tap generate`) knows.
    return PixArtSigmaPipeline(
        tokenizer=tiny_tokenizer(), text_encoder=tiny_t5(16), vae=tiny_vae_kl(), transformer=transformer,
        scheduler=DDIMScheduler(),
    )


PIXART_SIGMA = PipelineCase(
    name="PixArtSigmaPipeline",
    build=pixart_sigma,
    call=lambda: dict(
        prompt=PROMPT, num_inference_steps=5, guidance_scale=4.5, height=SIZE, width=SIZE, use_resolution_binning=False,
        max_sequence_length=8, generator=generator(), output_type="np",
    ),
    calls=5,
    how="CFG batched in one call; the transformer predicts noise and a learned variance (8 channels), "
        "which the pipeline cuts off: tap forecasts the whole 8-channel output.",
    saveable=True,
    generate_args=("--height", "32", "--width", "32"),
)



# -- Sana: Gemma 2, a deep-compression VAE (32x), linear-attention blocks, flow matching -----------------
def tiny_gemma2(hidden_size: int = 16):
    """A one-layer Gemma 2 decoder (its hidden states are the prompt embeddings) over :data:`VOCABULARY`."""
    from transformers import Gemma2Config, Gemma2Model

    return Gemma2Model(Gemma2Config(
        vocab_size=len(VOCABULARY), hidden_size=hidden_size, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, head_dim=8, max_position_embeddings=512, pad_token_id=0,
        eos_token_id=1, bos_token_id=2, attn_implementation="eager",
    )).eval()


def tiny_vae_dc(levels: int = 6):
    """An ``AutoencoderDC`` of ``levels`` ResBlock levels of 8 channels: 2**(levels-1) times smaller latents
    (32x, as Sana's DC-AE, at 6 levels)."""
    from diffusers import AutoencoderDC

    return AutoencoderDC(
        in_channels=3, latent_channels=4, attention_head_dim=2, encoder_block_types="ResBlock",
        decoder_block_types="ResBlock", encoder_block_out_channels=(8,) * levels,
        decoder_block_out_channels=(8,) * levels, encoder_layers_per_block=(1,) * levels,
        decoder_layers_per_block=(1,) * levels, encoder_qkv_multiscales=((),) * levels,
        decoder_qkv_multiscales=((),) * levels, downsample_block_type="conv", upsample_block_type="interpolate",
        decoder_norm_types="rms_norm", decoder_act_fns="silu", scaling_factor=0.41407,
    ).eval()


SANA_CONFIG = dict(
    patch_size=1, in_channels=4, out_channels=4, num_layers=2, attention_head_dim=8, num_attention_heads=2,
    num_cross_attention_heads=2, cross_attention_head_dim=8, cross_attention_dim=16, caption_channels=16,
    sample_size=16,  # the smallest that `use_resolution_binning` (on by default, so in `tap generate`) knows
)
SANA_SIZE = 128  # 4x4 latents through the 32x VAE


def sana():
    from diffusers import FlowMatchEulerDiscreteScheduler, SanaPipeline, SanaTransformer2DModel

    return SanaPipeline(
        tokenizer=tiny_tokenizer(), text_encoder=tiny_gemma2(), vae=tiny_vae_dc(),
        transformer=SanaTransformer2DModel(**SANA_CONFIG).eval(), scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
    )


def sana_call(**extra):
    return dict(
        prompt=PROMPT, num_inference_steps=5, guidance_scale=4.5, height=SANA_SIZE, width=SANA_SIZE,
        use_resolution_binning=False, complex_human_instruction=[], max_sequence_length=8, generator=generator(),
        output_type="np", **extra,
    )


SANA = PipelineCase(
    name="SanaPipeline",
    build=sana,
    call=sana_call,
    calls=5,
    how="CFG batched in one call, Gemma 2 prompt embeddings with an attention mask, no cache context.",
    saveable=True,
    generate_args=("--height", "32", "--width", "32"),
)


def sana_controlnet():
    from diffusers import FlowMatchEulerDiscreteScheduler, SanaControlNetModel, SanaControlNetPipeline, SanaTransformer2DModel

    transformer = SanaTransformer2DModel(**SANA_CONFIG).eval()
    controlnet = SanaControlNetModel(**{**SANA_CONFIG, "num_layers": 1}).eval()
    for block in controlnet.controlnet_blocks:  # zero-initialised: give them weights, so that the residuals count
        torch.nn.init.normal_(block.weight, std=0.1)
    return SanaControlNetPipeline(
        tokenizer=tiny_tokenizer(), text_encoder=tiny_gemma2(), vae=tiny_vae_dc(), transformer=transformer,
        controlnet=controlnet, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
    )


SANA_CONTROLNET = PipelineCase(
    name="SanaControlNetPipeline",
    build=sana_controlnet,
    call=lambda: sana_call(
        control_image=torch.rand(1, 3, SANA_SIZE, SANA_SIZE, generator=generator(1)), controlnet_conditioning_scale=1.0,
    ),
    calls=5,
    how="the ControlNet runs every step (tap does not hook it: `handle.denoisers` is the transformer alone) and its "
        "`controlnet_block_samples` are added after the transformer's blocks; the Sana adapter lists them in "
        "`adds_between_blocks`, so a full step sums them into the cached residual and a predicted step adds none twice.",
)



# -- Sana-Video: Gemma 2, a Wan VAE (4x spatial, 2x temporal), flow DPM-Solver ----------------------------
def tiny_vae_wan():
    """The 4-channel Wan VAE of ``tiny_pipelines.tiny_wan_pipeline`` (4x spatial, 2x temporal)."""
    from diffusers import AutoencoderKLWan

    return AutoencoderKLWan(
        base_dim=4, z_dim=4, dim_mult=[1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True],
        latents_mean=[0.0] * 4, latents_std=[1.0] * 4, scale_factor_temporal=2, scale_factor_spatial=4,
    ).eval()


def sana_video(pipeline: str = "SanaVideoPipeline"):
    import diffusers
    from diffusers import DPMSolverMultistepScheduler, SanaVideoTransformer3DModel

    transformer = SanaVideoTransformer3DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=12, num_layers=2,
        num_cross_attention_heads=2, cross_attention_head_dim=12, cross_attention_dim=24, caption_channels=16,
        mlp_ratio=2.5, dropout=0.0, attention_bias=False, sample_size=8, patch_size=(1, 2, 2),
        norm_elementwise_affine=False, norm_eps=1e-6, qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
    ).eval()
    scheduler = DPMSolverMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=8.0)
    return getattr(diffusers, pipeline)(
        tokenizer=tiny_tokenizer(), text_encoder=tiny_gemma2(), vae=tiny_vae_wan(), transformer=transformer,
        scheduler=scheduler,
    )


def sana_video_call(frames: int, **extra):
    return dict(
        prompt=PROMPT, num_inference_steps=5, guidance_scale=6.0, height=SIZE, width=SIZE, frames=frames,
        use_resolution_binning=False, complex_human_instruction=[], max_sequence_length=8, generator=generator(),
        output_type="np", **extra,
    )


SANA_VIDEO = PipelineCase(
    name="SanaVideoPipeline",
    build=sana_video,
    call=lambda: sana_video_call(frames=3),  # 2 latent frames
    calls=5,
    how="video tokens (2 latent frames) with RoPE, CFG batched, flow DPM-Solver (multistep: it keeps past "
        "predictions, so a predicted step's error also enters later steps).",
)

SANA_VIDEO_I2V = PipelineCase(
    name="SanaImageToVideoPipeline",
    build=lambda: sana_video("SanaImageToVideoPipeline"),
    call=lambda: sana_video_call(frames=5, image=torch.rand(1, 3, SIZE, SIZE, generator=generator(1))),
    calls=5,
    how="the image's latent is the first of 3 latent frames, kept clean at timestep 0 through a per-token "
        "timestep [B, 1, F, H, W] (adaLN-single per token); tap forecasts the whole output, the conditioned "
        "frame's included, and the pipeline drops that frame's prediction.",
)



# -- HunyuanVideo: Llama (hidden states) + CLIP (pooled), a causal 3D VAE, guidance-distilled -------------
def tiny_llama(hidden_size: int = 16):
    """A two-layer Llama (HunyuanVideo reads the third-last hidden states) over :data:`VOCABULARY`."""
    from transformers import LlamaConfig, LlamaModel

    return LlamaModel(LlamaConfig(
        vocab_size=len(VOCABULARY), hidden_size=hidden_size, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512, pad_token_id=0, eos_token_id=1,
        bos_token_id=2,
    )).eval()


def tiny_clip(hidden_size: int = 8, projection: bool = False):
    """A one-layer CLIP text encoder (pooled output; ``projection``: with its text projection)."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=len(VOCABULARY), hidden_size=hidden_size, intermediate_size=16, num_hidden_layers=1,
        num_attention_heads=2, max_position_embeddings=77, projection_dim=hidden_size, pad_token_id=0, eos_token_id=1,
        bos_token_id=2,
    )
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config).eval()


def tiny_vae_hunyuan_video():
    """An ``AutoencoderKLHunyuanVideo`` of 3 levels of 8 channels: 4x spatial, 4x temporal."""
    from diffusers import AutoencoderKLHunyuanVideo

    return AutoencoderKLHunyuanVideo(
        in_channels=3, out_channels=3, latent_channels=4, down_block_types=("HunyuanVideoDownBlock3D",) * 3,
        up_block_types=("HunyuanVideoUpBlock3D",) * 3, block_out_channels=(8, 8, 8), layers_per_block=1,
        act_fn="silu", norm_num_groups=4, scaling_factor=0.476986, spatial_compression_ratio=4,
        temporal_compression_ratio=4, mid_block_add_attention=False,
    ).eval()


def hunyuan_video(guidance_embeds: bool = True):
    from diffusers import FlowMatchEulerDiscreteScheduler, HunyuanVideoPipeline, HunyuanVideoTransformer3DModel

    transformer = HunyuanVideoTransformer3DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=1, num_single_layers=1,
        num_refiner_layers=1, patch_size=2, patch_size_t=1, guidance_embeds=guidance_embeds, text_embed_dim=16,
        pooled_projection_dim=8, rope_axes_dim=(2, 2, 4),
    ).eval()
    return HunyuanVideoPipeline(
        tokenizer=tiny_tokenizer(), text_encoder=tiny_llama(16), tokenizer_2=tiny_tokenizer(), text_encoder_2=tiny_clip(8),
        vae=tiny_vae_hunyuan_video(), transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
    )


def hunyuan_video_call(**extra):
    return {
        **dict(
            prompt=PROMPT, num_inference_steps=5, height=SIZE, width=SIZE, num_frames=5, max_sequence_length=8,
            generator=generator(), output_type="np",
        ),
        **extra,
    }


HUNYUAN_VIDEO = PipelineCase(
    name="HunyuanVideoPipeline",
    build=hunyuan_video,
    call=lambda: hunyuan_video_call(guidance_scale=6.0),
    calls=5,
    how="guidance-distilled (the guidance scale is embedded, one call per step) inside `cache_context('cond')`; "
        "2 latent frames of 8x8 latents, double- then single-stream blocks.",
    saveable=True,
    generate_args=("--height", "32", "--width", "32", "--frames", "5"),
)

HUNYUAN_VIDEO_TRUE_CFG = PipelineCase(
    name="HunyuanVideoPipeline-true-cfg",
    build=lambda: hunyuan_video(guidance_embeds=False),
    call=lambda: hunyuan_video_call(negative_prompt="blue dog", true_cfg_scale=4.0),
    calls=10,
    how="true CFG: two calls per step, in `cache_context('cond')` and `cache_context('uncond')`; tap keeps a "
        "cache per context and counts both calls of a step.",
)



# -- HunyuanVideo image-to-video: LLaVA (the image's CLIP tokens inside the prompt), latent concat or token replace
IMAGE_TOKEN = len(VOCABULARY) + 1  # LLaVA's image token, past the word-level vocabulary


def tiny_llava(hidden_size: int = 16):
    """A LLaVA of a two-layer CLIP vision tower (28x28 images: 4 patch tokens) and a two-layer Llama."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    text = LlamaConfig(
        vocab_size=IMAGE_TOKEN + 1, hidden_size=hidden_size, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512, pad_token_id=0, eos_token_id=1,
        bos_token_id=2,
    )
    vision = CLIPVisionConfig(
        hidden_size=8, intermediate_size=16, num_attention_heads=2, num_hidden_layers=2, image_size=28, patch_size=14,
        projection_dim=8,
    )
    config = LlavaConfig(vision_config=vision, text_config=text, pad_token_id=0, image_token_index=IMAGE_TOKEN)
    return LlavaForConditionalGeneration(config).eval()


def hunyuan_video_i2v(image_condition_type: str):
    from diffusers import FlowMatchEulerDiscreteScheduler, HunyuanVideoImageToVideoPipeline, HunyuanVideoTransformer3DModel
    from transformers import CLIPImageProcessor

    transformer = HunyuanVideoTransformer3DModel(
        in_channels=2 * 4 + 1 if image_condition_type == "latent_concat" else 4, out_channels=4,
        num_attention_heads=2, attention_head_dim=8, num_layers=1, num_single_layers=1, num_refiner_layers=1,
        patch_size=2, patch_size_t=1, guidance_embeds=image_condition_type == "token_replace", text_embed_dim=16,
        pooled_projection_dim=8, rope_axes_dim=(2, 2, 4), image_condition_type=image_condition_type,
    ).eval()
    image_processor = CLIPImageProcessor(
        crop_size=28, size=28, do_center_crop=True, do_normalize=True, do_resize=True, resample=3,
        image_mean=[0.48145466, 0.4578275, 0.40821073], image_std=[0.26862954, 0.26130258, 0.27577711],
    )
    return HunyuanVideoImageToVideoPipeline(
        tokenizer=tiny_tokenizer(), text_encoder=tiny_llava(16), tokenizer_2=tiny_tokenizer(), text_encoder_2=tiny_clip(8),
        vae=tiny_vae_hunyuan_video(), transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        image_processor=image_processor,
    )


def hunyuan_video_i2v_call(**extra):
    from PIL import Image

    pixels = (torch.rand(SIZE, SIZE, 3, generator=generator(1)) * 255).to(torch.uint8).numpy()
    return hunyuan_video_call(
        image=Image.fromarray(pixels), max_sequence_length=12,
        prompt_template={"template": "{}", "crop_start": 0, "image_emb_len": 4, "image_emb_start": 1, "image_emb_end": 5},
        **extra,
    )


HUNYUAN_VIDEO_I2V = PipelineCase(
    name="HunyuanVideoImageToVideoPipeline",
    build=lambda: hunyuan_video_i2v("latent_concat"),
    call=lambda: hunyuan_video_i2v_call(guidance_scale=1.0),
    calls=5,
    how="latent concat: the image's latent (first frame, zeros after) and a mask are concatenated to the latents "
        "on the channel axis (9 input channels), so the image enters through the patch embedding; no cache "
        "context; the image's CLIP tokens also sit in the LLaVA prompt embeddings.",
)

HUNYUAN_VIDEO_I2V_TOKEN_REPLACE = PipelineCase(
    name="HunyuanVideoImageToVideoPipeline-token-replace",
    build=lambda: hunyuan_video_i2v("token_replace"),
    call=lambda: hunyuan_video_i2v_call(guidance_scale=6.0),
    calls=5,
    how="token replace (HunyuanVideo-I2V-33ch): the clean image latent replaces the first latent frame, whose "
        "tokens the double-stream blocks modulate with a timestep-0 embedding (`token_replace_emb`, "
        "`first_frame_num_tokens`); the pipeline steps only the later frames; guidance-distilled.",
)



# -- Mochi: T5, 12-channel latents (8x spatial, 6x temporal, fixed in the pipeline), inverted timesteps ---
def mochi():
    from diffusers import AutoencoderKLMochi, FlowMatchEulerDiscreteScheduler, MochiPipeline, MochiTransformer3DModel

    transformer = MochiTransformer3DModel(
        patch_size=2, num_attention_heads=2, attention_head_dim=8, num_layers=2, pooled_projection_dim=16,
        in_channels=12, text_embed_dim=16, time_embed_dim=4, max_sequence_length=16,
    ).eval()
    vae = AutoencoderKLMochi(
        latent_channels=12, out_channels=3, encoder_block_out_channels=(32,) * 4, decoder_block_out_channels=(32,) * 4,
        layers_per_block=(1,) * 5, add_attention_block=(False,) * 5,
    ).eval()
    return MochiPipeline(
        tokenizer=tiny_tokenizer(), text_encoder=tiny_t5(16), vae=vae, transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(),
    )


MOCHI = PipelineCase(
    name="MochiPipeline",
    build=mochi,
    call=lambda: dict(
        prompt=PROMPT, negative_prompt="", num_inference_steps=5, guidance_scale=4.5, height=64, width=64, num_frames=7,
        max_sequence_length=8, generator=generator(), output_type="np",
    ),
    calls=5,
    how="CFG batched in `cache_context('cond_uncond')`; Mochi's scheduler counts timesteps up (the model gets "
        "1000 - t); 2 latent frames of 8x8 (the pipeline fixes 8x spatial, 6x temporal compression).",
)

CASES = [
    PIXART_SIGMA, SANA, SANA_CONTROLNET, SANA_VIDEO, SANA_VIDEO_I2V, HUNYUAN_VIDEO, HUNYUAN_VIDEO_TRUE_CFG,
    HUNYUAN_VIDEO_I2V, HUNYUAN_VIDEO_I2V_TOKEN_REPLACE, MOCHI,
]
