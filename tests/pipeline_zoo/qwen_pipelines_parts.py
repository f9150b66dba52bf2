"""Tiny parts of the Qwen-Image, Z-Image and Lumina2 pipelines, built locally on the CPU (no hub access).

The Qwen pipelines wrap the prompt in a chat template and drop its first 34 (text-to-image) or 64
(edit) tokens, counted in Qwen's BPE. :func:`qwen_tokenizer` is a word-level tokenizer whose
pre-tokenizer splits as that BPE does on those templates (newlines and ``'s`` are tokens, the chat
markers are special tokens), so the dropped prefix is the system prompt exactly and the kept text is
the user prompt plus the template's tail (8 tokens for a 3-word prompt; the edit pipelines keep
the image's vision tokens too).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from tiny_pipelines import VOCABULARY

QWEN_SPECIAL = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|image_pad|>", "<|vision_end|>", "<|video_pad|>",
                "<|endoftext|>"]
QWEN_WORDS = VOCABULARY + ["\n", "system", "user", "assistant"] + QWEN_SPECIAL
SIZE = 32  # image side in pixels


def qwen_tokenizer():
    """A word-level fast tokenizer with Qwen's chat and vision special tokens (see the module docstring)."""
    from tokenizers import AddedToken, Regex, Tokenizer
    from tokenizers import pre_tokenizers as pre
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    words = Tokenizer(WordLevel({word: index for index, word in enumerate(QWEN_WORDS)}, unk_token="<unk>"))
    words.pre_tokenizer = pre.Sequence([
        pre.Split(Regex(r"[ \t]+"), behavior="removed"),
        pre.Split(Regex(r"'s|\w+|[^\w\s]+|\n"), behavior="isolated"),
    ])
    words.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in QWEN_SPECIAL])
    return PreTrainedTokenizerFast(tokenizer_object=words, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def qwen_text_encoder():
    """A 1-layer Qwen2.5-VL (text width 16, a 1-block vision tower) over :data:`QWEN_WORDS`."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    ids = {token: QWEN_WORDS.index(token) for token in QWEN_SPECIAL}
    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
            "num_key_value_heads": 2, "vocab_size": len(QWEN_WORDS), "rope_theta": 1000000.0,
            "bos_token_id": None, "eos_token_id": QWEN_WORDS.index("<|im_end|>"), "pad_token_id": 0,
            "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
        },
        vision_config={"depth": 1, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": 16},
        hidden_size=16, vocab_size=len(QWEN_WORDS), image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    return Qwen2_5_VLForConditionalGeneration(config).eval()


def qwen_processor(tokenizer):
    """Qwen2-VL's processor over ``tokenizer``, with an image processor that makes few vision tokens
    (at most 56x56 pixels: 2x2 merged tokens). transformers builds Qwen2-VL's video processor only with
    torchvision, which is not installed here, and refuses a processor without one; the edit pipelines
    give it images only, so :class:`_ImageQwen2VLProcessor` leaves the video processor out."""
    image_processor = _image_processor_pil()(min_pixels=28 * 28, max_pixels=56 * 56, patch_size=14, merge_size=2,
                                            temporal_patch_size=2)
    return _image_processor_class()(image_processor=image_processor, tokenizer=tokenizer)


def _image_processor_pil():
    """Qwen2-VL's PIL image processor (its default one needs torchvision)."""
    import transformers

    return getattr(transformers, "Qwen2VLImageProcessorPil", None) or transformers.Qwen2VLImageProcessor


def _image_processor_class():
    from transformers import Qwen2VLProcessor
    from transformers.processing_utils import ProcessorMixin

    class _ImageQwen2VLProcessor(Qwen2VLProcessor):
        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            self.image_token, self.video_token = "<|image_pad|>", "<|video_pad|>"
            self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
            self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
            ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template, **kwargs)

    return _ImageQwen2VLProcessor


def qwen_vae():
    from diffusers import AutoencoderKLQwenImage

    return AutoencoderKLQwenImage(
        base_dim=8, z_dim=4, dim_mult=[1, 2, 2], num_res_blocks=1, temperal_downsample=[False, True],
        latents_mean=[0.0] * 4, latents_std=[1.0] * 4,
    ).eval()


def qwen_transformer(**extra):
    """The zoo's 2-block Qwen-Image transformer, with 2x2 patches over the VAE's 4 channels."""
    from diffusers import QwenImageTransformer2DModel

    return QwenImageTransformer2DModel(
        patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=8, num_attention_heads=2,
        joint_attention_dim=16, axes_dims_rope=(2, 2, 4), **extra,
    ).eval()


def qwen_components() -> dict:
    from diffusers import FlowMatchEulerDiscreteScheduler

    return {
        "transformer": qwen_transformer(), "vae": qwen_vae(), "scheduler": FlowMatchEulerDiscreteScheduler(),
        "text_encoder": qwen_text_encoder(), "tokenizer": qwen_tokenizer(),
    }


def picture(seed: int = 0, size: int = SIZE, mode: str = "RGB") -> Image.Image:
    """A small random PIL image."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return Image.fromarray(pixels).convert(mode)


def half_mask(size: int = SIZE) -> Image.Image:
    """White (repaint) on the right half, black (keep) on the left."""
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[:, size // 2:] = 255
    return Image.fromarray(mask)


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def wake(model: torch.nn.Module, std: float = 0.05) -> torch.nn.Module:
    """Small random values for every all-zero parameter (a ControlNet's zero-initialised output
    projections would otherwise add nothing between the blocks)."""
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.numel() and not parameter.any():
                parameter.normal_(0.0, std)
    return model


def qwen_edit_vae():
    """A Qwen-Image VAE that downsamples 16x with no residual blocks in the encoder: the edit pipelines
    resize the reference image to about 1024x1024 pixels whatever size it has, which this VAE encodes in
    about a second on the CPU (64x64 latents, 32x32 = 1024 reference tokens after 2x2 packing)."""
    from diffusers import AutoencoderKLQwenImage

    return AutoencoderKLQwenImage(
        base_dim=4, z_dim=4, dim_mult=[1, 1, 1, 1, 1], num_res_blocks=0,
        temperal_downsample=[False, False, False, True], latents_mean=[0.0] * 4, latents_std=[1.0] * 4,
    ).eval()


# -- Z-Image and Lumina2 ------------------------------------------------------------------------------

QWEN3_CHAT = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def z_image_components() -> dict:
    """Z-Image's parts: the zoo's transformer (2 blocks, 1 refiner block each side, 16 latent channels,
    2x2 patches), a 2-level 16-channel AutoencoderKL (2x downsampling), a 2-layer Qwen3 text encoder of
    width 16 (the pipeline reads its second-to-last hidden states) and :func:`qwen_tokenizer` with a
    Qwen3-like chat template (Z-Image applies the chat template to every prompt)."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler
    from transformers import Qwen3Config, Qwen3Model

    from zoo.joint_sequence import _z_image_build

    tokenizer = qwen_tokenizer()
    tokenizer.chat_template = QWEN3_CHAT
    text_encoder = Qwen3Model(Qwen3Config(
        hidden_size=16, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
        head_dim=8, vocab_size=len(QWEN_WORDS), max_position_embeddings=64, pad_token_id=0,
    )).eval()
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2, block_out_channels=[8, 8], layers_per_block=1, latent_channels=16,
        norm_num_groups=8, sample_size=SIZE,
        scaling_factor=0.3611, shift_factor=0.1159,
    ).eval()
    return {
        "transformer": _z_image_build().eval(), "vae": vae, "scheduler": FlowMatchEulerDiscreteScheduler(),
        "text_encoder": text_encoder, "tokenizer": tokenizer,
    }


def z_image_controlnet(transformer):
    """A Z-Image ControlNet with one control block (its hint is added after the transformer's block 0)
    and one control refiner block; the pipeline shares the transformer's embedders and refiners with it."""
    from diffusers import ZImageControlNetModel

    return wake(ZImageControlNetModel(
        control_layers_places=[0], control_refiner_layers_places=[0], control_in_dim=16, all_patch_size=(2,),
        all_f_patch_size=(1,), dim=transformer.config.dim, n_refiner_layers=1, n_heads=2, n_kv_heads=2, qk_norm=True,
    ).eval())


def lumina2_components() -> dict:
    """Lumina2's parts: the zoo's transformer (2 blocks, 4 latent channels, captions of width 32), a
    4-level AutoencoderKL of width 4 (the pipeline assumes 8x downsampling: 32 px give 4x4 latents, 4 tokens
    after 2x2 patches) and a 2-layer Gemma2 of width 32."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler
    from transformers import Gemma2Config, Gemma2Model

    from zoo.joint_sequence import _lumina2_build

    text_encoder = Gemma2Model(Gemma2Config(
        head_dim=8, hidden_size=32, intermediate_size=16, num_attention_heads=2, num_hidden_layers=2,
        num_key_value_heads=2, sliding_window=4, vocab_size=len(QWEN_WORDS), pad_token_id=0,
    )).eval()
    vae = AutoencoderKL(
        sample_size=SIZE, in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(4,) * 4, layers_per_block=1, latent_channels=4,
        norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5035,
    ).eval()
    return {
        "transformer": _lumina2_build().eval(), "vae": vae, "scheduler": FlowMatchEulerDiscreteScheduler(),
        "text_encoder": text_encoder, "tokenizer": qwen_tokenizer(),
    }
