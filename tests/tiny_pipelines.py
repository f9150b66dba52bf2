"""Tiny diffusers pipelines with random weights, built locally on the CPU (no hub access) for tests."""

from __future__ import annotations

from pathlib import Path

import torch

VOCABULARY = ["<pad>", "</s>", "<unk>", "a", "cat", "dog", "the", "on", "moon", "red", "blue", "running"]


def tiny_tokenizer():
    """A word-level fast tokenizer over :data:`VOCABULARY` with T5's pad, end and unknown tokens."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import PreTrainedTokenizerFast

    words = Tokenizer(WordLevel({word: index for index, word in enumerate(VOCABULARY)}, unk_token="<unk>"))
    words.pre_tokenizer = Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=words, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def tiny_wan_transformer(seed: int):
    from diffusers import WanTransformer3DModel

    torch.manual_seed(seed)
    return WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4,
        text_dim=16, freq_dim=16, ffn_dim=32, num_layers=2, rope_max_seq_len=32,
    ).eval()


def tiny_wan_pipeline(two_experts: bool = False, seed: int = 0):
    """A ``WanPipeline`` with a 2-block transformer, a 4-channel VAE (4x spatial, 2x temporal) and a
    one-layer UMT5 text encoder; ``two_experts`` adds ``transformer_2`` at ``boundary_ratio=0.5`` (Wan 2.2 A14B)."""
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    vae = AutoencoderKLWan(
        base_dim=4, z_dim=4, dim_mult=[1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True],
        latents_mean=[0.0] * 4, latents_std=[1.0] * 4, scale_factor_temporal=2, scale_factor_spatial=4,
    ).eval()
    text_encoder = UMT5EncoderModel(UMT5Config(
        vocab_size=len(VOCABULARY), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
        relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )).eval()
    return WanPipeline(
        tokenizer=tiny_tokenizer(), text_encoder=text_encoder, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        transformer=tiny_wan_transformer(seed), transformer_2=tiny_wan_transformer(seed + 1) if two_experts else None,
        boundary_ratio=0.5 if two_experts else None,
    )


def save_pipeline(pipe, folder) -> Path:
    """Save ``pipe`` with ``save_pretrained`` so that ``DiffusionPipeline.from_pretrained(folder)`` loads it."""
    pipe.save_pretrained(str(folder))
    return Path(folder)
