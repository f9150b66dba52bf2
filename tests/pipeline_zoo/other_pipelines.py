"""Pipeline cases: see pipeline_zoo/__init__.py.

PixArt-Σ and -α, Sana (text-to-image, ControlNet, Sprint and its image-to-image, video and image-to-video),
HunyuanVideo (true CFG, image-to-video by latent concat and by token replace), Mochi, Allegro, CogView4 (and
its channel-concat control), Kandinsky 5 (video, image) and Cosmos Predict 2 (text-to-image, video-to-world):
tiny pipelines after diffusers' own pipeline tests, their transformers from the configs of ``tests/zoo``
(adjusted where a pipeline needs it, said there), their text encoders from tiny ``transformers`` configs
over the word-level tokenizer of ``tiny_pipelines``. Cases whose tiny VAE decodes to nearly constant frames
(the Wan VAE's) compare latents.
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


def sharp_posterior(vae):
    """Pin an ``AutoencoderKL``'s posterior log-variance to -30 (std 3e-7), so that ``latent_dist.sample()``
    without a generator (global RNG) gives the mean: for pipelines that encode a condition image that way."""
    with torch.no_grad():
        half = vae.quant_conv.out_channels // 2
        vae.quant_conv.weight[half:] = 0
        vae.quant_conv.bias[half:] = -30.0
    return vae


def tiny_t5(d_model: int = 16):
    """A one-layer T5 encoder over :data:`VOCABULARY`."""
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(
        vocab_size=len(VOCABULARY), d_model=d_model, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
        relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )).eval()


# -- PixArt-Σ: T5, DPM-Solver++ (epsilon), learned variance (out_channels = 2 x latent channels) ----------------
def pixart_sigma(alpha: bool = False):
    from diffusers import DPMSolverMultistepScheduler, PixArtAlphaPipeline, PixArtSigmaPipeline, PixArtTransformer2DModel

    heads = 3 if alpha else 2  # α's size conditions take a third of the width each
    transformer = PixArtTransformer2DModel(
        sample_size=128 if alpha else 32, num_layers=2, patch_size=2, attention_head_dim=8, num_attention_heads=heads,
        in_channels=4, cross_attention_dim=8 * heads, out_channels=8, attention_bias=True, activation_fn="gelu-approximate",
        num_embeds_ada_norm=1000, norm_type="ada_norm_single", norm_elementwise_affine=False, norm_eps=1e-6,
        use_additional_conditions=alpha, caption_channels=16,
    ).eval()
    # sample_size 32 is the smallest that `use_resolution_binning` (on by default, so in `tap generate`) knows;
    # PixArt-α passes its resolution and aspect-ratio conditions at sample_size 128 (its 1024px model).
    return (PixArtAlphaPipeline if alpha else PixArtSigmaPipeline)(
        tokenizer=tiny_tokenizer(), text_encoder=tiny_t5(16), vae=tiny_vae_kl(), transformer=transformer,
        scheduler=DPMSolverMultistepScheduler(),  # PixArt-Σ's own
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


PIXART_ALPHA = PipelineCase(
    name="PixArtAlphaPipeline",
    build=lambda: pixart_sigma(alpha=True),
    call=PIXART_SIGMA.call,
    calls=5,
    how="as PixArt-Σ, plus the 1024px model's micro-conditions (resolution, aspect ratio) in `added_cond_kwargs`, "
        "embedded into the adaLN-single timestep embedding.",
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



# -- Sana Sprint: sCM few-step distillation (guidance embedded, trigonometric timesteps); image-to-image ----
def sana_sprint(img2img: bool = False):
    from diffusers import SanaSprintImg2ImgPipeline, SanaSprintPipeline, SanaTransformer2DModel, SCMScheduler

    transformer = SanaTransformer2DModel(**SANA_CONFIG, qk_norm="rms_norm_across_heads", guidance_embeds=True).eval()
    return (SanaSprintImg2ImgPipeline if img2img else SanaSprintPipeline)(
        tokenizer=tiny_tokenizer(), text_encoder=tiny_gemma2(), vae=tiny_vae_dc(), transformer=transformer,
        scheduler=SCMScheduler(),
    )


def sana_sprint_call(**extra):
    return dict(
        prompt=PROMPT, num_inference_steps=8, intermediate_timesteps=None, guidance_scale=4.5, height=SANA_SIZE,
        width=SANA_SIZE, use_resolution_binning=False, complex_human_instruction=[], max_sequence_length=8,
        generator=generator(), output_type="np", **extra,
    )


SANA_SPRINT = PipelineCase(
    name="SanaSprintPipeline",
    build=sana_sprint,
    call=sana_sprint_call,
    calls=8,
    how="sCM consistency sampling (each step predicts x0 and re-noises with fresh generator noise), guidance "
        "embedded (one call per step), timestep sin/(sin+cos) of a trigonometric schedule.",
)

SANA_SPRINT_IMG2IMG = PipelineCase(
    name="SanaSprintImg2ImgPipeline",
    build=lambda: sana_sprint(img2img=True),
    call=lambda: sana_sprint_call(image=torch.rand(1, 3, SANA_SIZE, SANA_SIZE, generator=generator(1)), strength=0.5),
    calls=4,
    how="strength 0.5: the run starts at step 4 of 8 (the image's latent noised to that timestep), so the "
        "pipeline makes 4 calls; tap counts exactly those from the first call on and predicts some.",
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
        output_type="latent", **extra,  # the tiny Wan VAE's frames hardly vary: compare latents
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



# -- Allegro: T5, ancestral Euler, 3D RoPE built by the pipeline; its VAE decodes only tiled (slow): latents out --------
def allegro():
    from diffusers import AllegroPipeline, AllegroTransformer3DModel, AutoencoderKLAllegro, EulerAncestralDiscreteScheduler

    transformer = AllegroTransformer3DModel(
        # head dim 12: the pipeline's RoPE splits it in three even parts (the zoo's 8 is for no RoPE)
        num_attention_heads=2, attention_head_dim=12, in_channels=4, out_channels=4, num_layers=2,
        cross_attention_dim=24, sample_width=8, sample_height=8, sample_frames=8, caption_channels=16,
    ).eval()
    vae = AutoencoderKLAllegro(
        in_channels=3, out_channels=3, down_block_types=("AllegroDownBlock3D",) * 4,
        up_block_types=("AllegroUpBlock3D",) * 4, block_out_channels=(8,) * 4, latent_channels=4, layers_per_block=1,
        norm_num_groups=2, temporal_compression_ratio=4,
    ).eval()
    vae.enable_tiling()
    return AllegroPipeline(
        tokenizer=tiny_tokenizer(), text_encoder=tiny_t5(16), vae=vae, transformer=transformer,
        scheduler=EulerAncestralDiscreteScheduler(),  # Allegro's own (stochastic: noise from the seeded generator)
    )


ALLEGRO = PipelineCase(
    name="AllegroPipeline",
    build=allegro,
    call=lambda: dict(
        prompt=PROMPT, negative_prompt="", num_inference_steps=5, guidance_scale=6.0, height=64, width=64, num_frames=8,
        max_sequence_length=8, generator=generator(), output_type="latent",
    ),
    calls=5,
    how="CFG batched, no cache context; the pipeline builds the 3D RoPE and passes it in (`image_rotary_emb`); "
        "2 latent frames of 8x8 (8x spatial, 4x temporal); epsilon prediction, ancestral Euler (fresh noise each step).",
)



# -- CogView4: GLM (second-last hidden states), separate cond / uncond calls, dynamic shift ---------------
def tokenizer_with_start():
    """:func:`tiny_tokenizer` that starts every text with ``</s>`` (as GLM's with ``[gMASK]<sop>``), so that an
    empty negative prompt is not zero tokens long."""
    from tokenizers.processors import TemplateProcessing

    tokenizer = tiny_tokenizer()
    tokenizer.backend_tokenizer.post_processor = TemplateProcessing(single="</s> $A", special_tokens=[("</s>", 1)])
    return tokenizer


def tiny_glm(hidden_size: int = 16):
    from transformers import GlmConfig, GlmModel

    return GlmModel(GlmConfig(
        vocab_size=len(VOCABULARY), hidden_size=hidden_size, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, head_dim=8, max_position_embeddings=512, pad_token_id=0,
        eos_token_id=1, bos_token_id=2,
    )).eval()


def cogview4(control: bool = False):
    import diffusers
    from diffusers import CogView4Transformer2DModel, FlowMatchEulerDiscreteScheduler

    transformer = CogView4Transformer2DModel(
        patch_size=2, in_channels=8 if control else 4, num_layers=2, attention_head_dim=4, num_attention_heads=4,
        out_channels=4, text_embed_dim=16, time_embed_dim=8, condition_dim=4, sample_size=16,
    ).eval()
    scheduler = FlowMatchEulerDiscreteScheduler(
        base_shift=0.25, max_shift=0.75, base_image_seq_len=256, use_dynamic_shifting=True, time_shift_type="linear",
    )
    pipeline = diffusers.CogView4ControlPipeline if control else diffusers.CogView4Pipeline
    vae = tiny_vae_kl()
    if control:  # the pipeline samples the control latents with the global RNG: make that sample the mean
        sharp_posterior(vae)
    return pipeline(
        tokenizer=tokenizer_with_start(), text_encoder=tiny_glm(16), vae=vae, transformer=transformer,
        scheduler=scheduler,
    )


def cogview4_call(**extra):
    return dict(
        prompt=PROMPT, negative_prompt="blue dog", num_inference_steps=5, guidance_scale=5.0, height=SIZE, width=SIZE,
        max_sequence_length=8, generator=generator(), output_type="np", **extra,
    )


COGVIEW4 = PipelineCase(
    name="CogView4Pipeline",
    build=cogview4,
    call=cogview4_call,
    calls=10,
    how="CFG as two calls per step, in `cache_context('cond')` and `cache_context('uncond')` (texts of "
        "different lengths); dynamic (linear) shift; SDXL-style size conditions.",
    saveable=True,
    generate_args=("--height", "32", "--width", "32"),
)

COGVIEW4_CONTROL = PipelineCase(
    name="CogView4ControlPipeline",
    build=lambda: cogview4(control=True),
    call=lambda: cogview4_call(control_image=torch.rand(1, 3, SIZE, SIZE, generator=generator(1))),
    calls=10,
    how="control by channel concat (the control image's latents join the latents, 8 input channels); CFG as "
        "two calls per step WITHOUT a cache context: tap keys them by call order within a step ('default', 'default/call 2') "
        "and counts both.",
)



# -- Kandinsky 5 text-to-video: Qwen2.5-VL (hidden states) + CLIP (pooled), separate cond / uncond calls ----
def tiny_qwen25_vl(hidden_size: int = 16):
    """A Qwen2.5-VL of two text layers (and a two-layer vision tower, unused for text) over :data:`VOCABULARY`."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    vocabulary = len(VOCABULARY) + 3  # and its vision start / end / pad tokens
    config = Qwen2_5_VLConfig(
        text_config=dict(
            hidden_size=hidden_size, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=2, vocab_size=vocabulary, rope_theta=10000.0, max_position_embeddings=1024,
            rope_scaling={"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
        ),
        vision_config=dict(depth=2, hidden_size=16, intermediate_size=16, num_heads=2, out_hidden_size=hidden_size),
        vocab_size=vocabulary, vision_start_token_id=vocabulary - 3, vision_end_token_id=vocabulary - 2,
        vision_token_id=vocabulary - 1, image_token_id=vocabulary - 1, video_token_id=vocabulary - 1,
    )
    return Qwen2_5_VLForConditionalGeneration(config).eval()


def kandinsky5_transformer():
    from diffusers import Kandinsky5Transformer3DModel

    model = Kandinsky5Transformer3DModel(
        in_visual_dim=4, in_text_dim=16, in_text_dim2=8, time_dim=16, out_visual_dim=4, patch_size=(1, 2, 2),
        model_dim=16, ff_dim=32, num_text_blocks=1, num_visual_blocks=2, axes_dims=(1, 1, 2), visual_cond=False,
        attention_type="regular",
    )
    for name, module in model.named_modules():  # zero-initialised modulations: random ones (as tests/zoo)
        if name.endswith("modulation.out_layer"):
            torch.nn.init.normal_(module.weight, std=0.1)
            torch.nn.init.normal_(module.bias, std=0.1)
    return model.eval()


def kandinsky5_t2v():
    from diffusers import FlowMatchEulerDiscreteScheduler, Kandinsky5T2VPipeline

    return Kandinsky5T2VPipeline(
        transformer=kandinsky5_transformer(), vae=tiny_vae_hunyuan_video(), text_encoder=tiny_qwen25_vl(16),
        tokenizer=tiny_tokenizer(), text_encoder_2=tiny_clip(8), tokenizer_2=tiny_tokenizer(),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0),
    )


KANDINSKY5_T2V = PipelineCase(
    name="Kandinsky5T2VPipeline",
    build=kandinsky5_t2v,
    call=lambda: dict(
        prompt=PROMPT, negative_prompt="blue dog", num_inference_steps=5, guidance_scale=5.0, height=SIZE, width=SIZE,
        num_frames=5, max_sequence_length=8, generator=generator(), output_type="np",
    ),
    calls=10,
    how="CFG as two calls per step without a cache context (texts of different lengths, own text RoPE); "
        "latents [B, F, H, W, C] channels-last; tap tells the cond and uncond calls apart by call order.",
)



def kandinsky5_t2i():
    from diffusers import FlowMatchEulerDiscreteScheduler, Kandinsky5T2IPipeline

    pipe = Kandinsky5T2IPipeline(
        transformer=kandinsky5_transformer(), vae=tiny_vae_kl(blocks=4), text_encoder=tiny_qwen25_vl(16),
        tokenizer=tiny_tokenizer(), text_encoder_2=tiny_clip(8), tokenizer_2=tiny_tokenizer(),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
    )
    # It resizes any other size to one of its listed ones (1024x1024 the smallest: 4096 tokens, seconds on a
    # CPU); an instance attribute, so list a tiny size too.
    pipe.resolutions = [*pipe.resolutions, (KANDINSKY5_T2I_SIZE, KANDINSKY5_T2I_SIZE)]
    return pipe


KANDINSKY5_T2I_SIZE = 64  # 8x8 latents through the fixed 8x VAE factor


KANDINSKY5_T2I = PipelineCase(
    name="Kandinsky5T2IPipeline",
    build=kandinsky5_t2i,
    call=lambda: dict(
        prompt=PROMPT, negative_prompt="blue dog", num_inference_steps=4, guidance_scale=3.5,
        height=KANDINSKY5_T2I_SIZE, width=KANDINSKY5_T2I_SIZE, max_sequence_length=8, generator=generator(),
        output_type="np",
    ),
    calls=8,
    how="the video transformer on one latent frame (its 3D RoPE over T=1); CFG as two calls per step without a "
        "cache context; the pipeline's size list gets 64x64 added (it allows 1024x1024 and up).",
)



# -- Cosmos Predict 2: T5, a Wan VAE, EDM preconditioning around the transformer; a pass-through guardrail --
def pass_through_guardrail():
    """Stands in for Cosmos' safety checker (the ``cosmos_guardrail`` models, not buildable from a config),
    as in diffusers' own Cosmos tests: every text and video passes."""
    from diffusers.configuration_utils import ConfigMixin
    from diffusers.models.modeling_utils import ModelMixin

    class PassThroughGuardrail(ModelMixin, ConfigMixin, _PassThrough):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("_device_tracker", torch.zeros(1), persistent=False)

        @property
        def device(self) -> torch.device:
            return self._device_tracker.device

        @property
        def dtype(self) -> torch.dtype:
            return self._device_tracker.dtype

    return PassThroughGuardrail()


class _PassThrough:
    def check_text_safety(self, prompt: str) -> bool:
        return True

    def check_video_safety(self, frames):
        return frames


def cosmos_transformer(in_channels: int = 4):
    from diffusers import CosmosTransformer3DModel

    return CosmosTransformer3DModel(
        in_channels=in_channels, out_channels=4, num_attention_heads=2, attention_head_dim=12, num_layers=2,
        mlp_ratio=2, text_embed_dim=16, adaln_lora_dim=4, max_size=(4, 32, 32), patch_size=(1, 2, 2),
        rope_scale=(2.0, 1.0, 1.0), concat_padding_mask=False, extra_pos_embed_type="learnable",  # True needs torchvision
    ).eval()


def cosmos2(pipeline: str = "Cosmos2TextToImagePipeline"):
    import diffusers
    from diffusers import FlowMatchEulerDiscreteScheduler

    in_channels = 4 + (pipeline == "Cosmos2VideoToWorldPipeline")  # and the condition mask
    return getattr(diffusers, pipeline)(
        text_encoder=tiny_t5(16), tokenizer=tiny_tokenizer(), transformer=cosmos_transformer(in_channels), vae=tiny_vae_wan(),
        scheduler=FlowMatchEulerDiscreteScheduler(use_karras_sigmas=True), safety_checker=pass_through_guardrail(),
    )


COSMOS2_T2I = PipelineCase(
    name="Cosmos2TextToImagePipeline",
    build=cosmos2,
    call=lambda: dict(
        prompt=PROMPT, negative_prompt="blue dog", num_inference_steps=5, guidance_scale=3.0, height=SIZE, width=SIZE,
        max_sequence_length=8, generator=generator(), output_type="latent",  # the tiny Wan VAE's output hardly varies
    ),
    calls=10,
    how="CFG as two calls per step without a cache context; the pipeline wraps the transformer in EDM "
        "preconditioning (c_in, c_skip, c_out, timestep sigma/(sigma+1)), so tap forecasts the raw output "
        "before the pipeline's mixing; one latent frame.",
)


COSMOS2_V2W = PipelineCase(
    name="Cosmos2VideoToWorldPipeline",
    build=lambda: cosmos2("Cosmos2VideoToWorldPipeline"),
    call=lambda: dict(
        image=torch.rand(1, 3, SIZE, SIZE, generator=generator(1)), prompt=PROMPT, negative_prompt="blue dog",
        num_inference_steps=5, guidance_scale=3.0, height=SIZE, width=SIZE, num_frames=5, max_sequence_length=8,
        generator=generator(), output_type="latent",  # the tiny Wan VAE's frames hardly vary: compare latents
    ),
    calls=10,
    how="image-to-video: the image's latent is the first of 3 latent frames, put in clean at each call with a "
        "per-frame timestep [B, 1, T, 1, 1] (the conditioning frame's pinned) and a condition mask concatenated "
        "on the channels; tap forecasts all frames' tokens, the pipeline overwrites the conditioning frame's "
        "prediction; CFG as two calls per step without a cache context.",
)

CASES = [
    PIXART_SIGMA, PIXART_ALPHA,
    SANA, SANA_CONTROLNET, SANA_SPRINT, SANA_SPRINT_IMG2IMG, SANA_VIDEO, SANA_VIDEO_I2V,
    HUNYUAN_VIDEO, HUNYUAN_VIDEO_TRUE_CFG, HUNYUAN_VIDEO_I2V, HUNYUAN_VIDEO_I2V_TOKEN_REPLACE,
    MOCHI, ALLEGRO, COGVIEW4, COGVIEW4_CONTROL, KANDINSKY5_T2V, KANDINSKY5_T2I, COSMOS2_T2I, COSMOS2_V2W,
]
