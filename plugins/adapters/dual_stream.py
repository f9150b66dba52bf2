"""Adapters of one family of diffusers transformers (see docs/adapters.md): dual-stream (MMDiT-style) blocks.

Every class here runs one list of blocks that each take the image tokens and the text tokens as
two separate streams (``hidden_states``, ``encoder_hidden_states``), attend over both jointly, and
return both as ``(hidden_states, encoder_hidden_states)``. After the stack the head reads the
image tokens alone (the text stream is dropped, or, in ConsisID, goes through a per-token
LayerNorm with the image tokens and is sliced off again), so only the image tokens are predicted
and a skipped block passes both streams through unchanged. Embeddings (patch, timestep, text
projection, RoPE) run before the stack on every step, exactly.

SD3 (``sd3``) and Qwen-Image (``qwen-image``) are MMDiTs too; their adapters are built in
(:mod:`tap_plugins.adapters.sd3`, :mod:`tap_plugins.adapters.qwen_image`).
"""

from __future__ import annotations

import torch

from tap.adapter import argument
from tap_plugins.adapters.generic import GenericAdapter


class _JointNormAdapter(GenericAdapter):
    """Blocks returning ``(hidden_states, encoder_hidden_states)`` whose ``norm1`` modulates both streams.

    The probe is the first output of ``norm1(hidden_states, encoder_hidden_states, <conditioning>)``:
    the AdaLN-modulated, normalised image tokens (the text half is computed alongside and dropped).
    """

    block_lists = ("transformer_blocks",)
    block_outputs = ("hidden_states", "encoder_hidden_states")

    def modulated_input(self, block, args, kwargs):
        x = self.block_argument(args, kwargs, self.image_tokens, block)
        text = self.block_argument(args, kwargs, "encoder_hidden_states", block)
        condition = self.block_argument(args, kwargs, self.conditioning, block)
        return block.norm1(x, text, condition)[0]


class CogVideoXAdapter(_JointNormAdapter):
    """CogVideoX (diffusers ``CogVideoXTransformer3DModel``): one list of ``CogVideoXBlock``.

    Each block takes ``(hidden_states, encoder_hidden_states, temb, image_rotary_emb,
    attention_kwargs)`` and returns ``(hidden_states, encoder_hidden_states)``. The head is
    ``norm_final`` (a LayerNorm) on the video tokens alone, then ``norm_out(temb)`` and ``proj_out``;
    the text stream is not read after the stack, so only the video tokens are predicted. The probe
    is the first output of ``norm1(x, text, temb)`` (``CogVideoXLayerNormZero``). Nothing runs
    between the blocks; the patch embedding (text and video projected jointly, then split), the
    timestep and ``ofs`` embeddings stay outside the stack and run exactly.
    """

    name = "cogvideox"
    transformer_classes = ("CogVideoXTransformer3DModel",)
    timestep_argument = ("timestep", 2)


class ConsisIDAdapter(_JointNormAdapter):
    """ConsisID (diffusers ``ConsisIDTransformer3DModel``): CogVideoX's block stack plus face cross-attention.

    Each ``ConsisIDBlock`` takes ``(hidden_states, encoder_hidden_states, temb, image_rotary_emb)``
    and returns ``(hidden_states, encoder_hidden_states)``. The head joins ``[text; video]`` for
    ``norm_final`` (a per-token LayerNorm, so the text does not reach the video tokens) and slices the
    video tokens out again: only the video tokens are predicted. The probe is the first output of
    ``norm1(x, text, temb)``.

    Face models (``is_train_face``) add ``perceiver_cross_attention[k](valid_face_emb,
    hidden_states)`` to the video tokens after every ``cross_attn_interval``-th block, inside the
    loop. Calls given ``id_cond`` or ``id_vit_hidden`` therefore cache the sum of each block's own
    residual: the face cross-attention is left out of the forecast and runs on every step, on
    predicted steps from the predicted tokens, so it is added once.
    """

    name = "consisid"
    transformer_classes = ("ConsisIDTransformer3DModel",)
    timestep_argument = ("timestep", 2)
    adds_between_blocks = ("id_cond", "id_vit_hidden")


class CogView3PlusAdapter(_JointNormAdapter):
    """CogView3-Plus (diffusers ``CogView3PlusTransformer2DModel``): one list of dual-stream blocks.

    Each ``CogView3PlusTransformerBlock`` takes ``(hidden_states, encoder_hidden_states, emb)`` and
    returns ``(hidden_states, encoder_hidden_states)``; the head (``norm_out(emb)`` + ``proj_out``)
    reads the image tokens alone, so only they are predicted. The probe is the first output of
    ``norm1(x, text, emb)`` (``CogView3PlusAdaLayerNormZeroTextImage``). Nothing runs between the
    blocks; the patch embedding and the timestep/size embedding run exactly before the stack.
    """

    name = "cogview3plus"
    transformer_classes = ("CogView3PlusTransformer2DModel",)
    timestep_argument = ("timestep", 2)
    conditioning = "emb"


class CogView4Adapter(_JointNormAdapter):
    """CogView4 (diffusers ``CogView4Transformer2DModel``): one list of dual-stream blocks.

    Each ``CogView4TransformerBlock`` takes ``(hidden_states, encoder_hidden_states, temb,
    image_rotary_emb, attention_mask, attention_kwargs)`` (positionally) and returns
    ``(hidden_states, encoder_hidden_states)``; the head (``norm_out(temb)`` + ``proj_out``) reads the
    image tokens alone, so only they are predicted. The probe is the first output of
    ``norm1(x, text, temb)`` (``CogView4AdaLayerNormZero``). Nothing runs between the blocks.
    """

    name = "cogview4"
    transformer_classes = ("CogView4Transformer2DModel",)
    timestep_argument = ("timestep", 2)


class EasyAnimateAdapter(_JointNormAdapter):
    """EasyAnimate (diffusers ``EasyAnimateTransformer3DModel``): one list of blocks, MMDiT ones first.

    Each ``EasyAnimateTransformerBlock`` (with its own text feed-forward for the first
    ``mmdit_layers``, sharing the video one after) takes ``(hidden_states, encoder_hidden_states,
    temb, image_rotary_emb)`` and returns ``(hidden_states, encoder_hidden_states)``; the head
    (``norm_final``, ``norm_out(temb)``, ``proj_out``) reads the video tokens alone, so only they are
    predicted. The probe is the first output of ``norm1(x, text, temb)``
    (``EasyAnimateLayerNormZero``). Inpaint and control latents are concatenated to the input
    channels before the patch embedding, outside the stack, and stay exact.
    """

    name = "easyanimate"
    transformer_classes = ("EasyAnimateTransformer3DModel",)
    timestep_argument = ("timestep", 1)


class GlmImageAdapter(_JointNormAdapter):
    """GLM-Image (diffusers ``GlmImageTransformer2DModel``): one list of dual-stream blocks.

    Each ``GlmImageTransformerBlock`` takes ``(hidden_states, encoder_hidden_states, temb,
    image_rotary_emb, attention_mask, attention_kwargs, kv_cache)`` and returns ``(hidden_states,
    encoder_hidden_states)``; the head (``norm_out(temb)`` + ``proj_out``) reads the image tokens
    alone, so only they are predicted. The probe is the first output of ``norm1(x, text, temb)``
    (``GlmImageAdaLayerNormZero``). The prior-token embedding is added to the image tokens before
    the stack and stays exact.

    Image editing first calls the transformer on each condition image with ``kv_caches`` in
    ``"write"`` mode, so that every block stores its keys and values: those calls run every block.
    Denoising calls in ``"read"`` mode (the blocks attend to the stored keys too) or ``"skip"`` mode
    are predicted as usual.
    """

    name = "glm-image"
    transformer_classes = ("GlmImageTransformer2DModel",)
    timestep_argument = ("timestep", 4)

    def full_compute_reason(self, args, kwargs):
        caches = argument(args, kwargs, "kv_caches", 10)
        modes = {getattr(cache, "mode", None) for cache in getattr(caches, "caches", ())}
        if "write" in modes:
            return f"{type(self).__name__} runs every block of a call that writes its KV cache (kv_caches mode 'write')"
        return super().full_compute_reason(args, kwargs)


class MochiAdapter(GenericAdapter):
    """Mochi (diffusers ``MochiTransformer3DModel``): one list of asymmetric dual-stream blocks.

    Each ``MochiTransformerBlock`` takes ``(hidden_states, encoder_hidden_states, temb,
    encoder_attention_mask, image_rotary_emb)`` and returns ``(hidden_states,
    encoder_hidden_states)``; the last one is ``context_pre_only`` and returns the text stream it was
    given, as a skipped block does. The head (``norm_out(temb)`` + ``proj_out``) reads the video tokens
    alone, so only they are predicted. The probe is the first output of ``norm1(x, temb)``
    (``MochiRMSNormZero``). Nothing runs between the blocks.

    Mochi's sampler runs its timesteps upwards (``1000 - t``, an inverted flow-matching schedule):
    the generation key is read as ``1000 - timestep`` so that a new generation is still a jump up.
    """

    name = "mochi"
    transformer_classes = ("MochiTransformer3DModel",)
    timestep_argument = ("timestep", 2)
    block_lists = ("transformer_blocks",)
    block_outputs = ("hidden_states", "encoder_hidden_states")
    norm_keyword = None

    def generation_key(self, args, kwargs):
        timestep, shape = super().generation_key(args, kwargs)
        return (None if timestep is None else 1000.0 - timestep), shape


class JoyImageEditAdapter(GenericAdapter):
    """JoyImage-Edit (diffusers ``JoyImageEditTransformer3DModel``): one list of double-stream blocks.

    Each ``JoyImageTransformerBlock`` (in ``double_blocks``) takes ``(hidden_states,
    encoder_hidden_states, temb, image_rotary_emb)`` and returns ``(hidden_states,
    encoder_hidden_states)``; the head (``norm_out`` + ``proj_out``, unpatchify) reads the image tokens
    alone, so only they are predicted (for multi-item input, the reference items' tokens are part of
    them). The block has no AdaLN module: the probe is its own image modulation,
    ``img_norm1(x) * (1 + scale) + shift`` with the first two of ``img_mod(temb)`` (a Wan-style
    table). Nothing runs between the blocks.
    """

    name = "joyimage-edit"
    transformer_classes = ("JoyImageEditTransformer3DModel",)
    timestep_argument = ("timestep", 1)
    block_lists = ("double_blocks",)
    block_outputs = ("hidden_states", "encoder_hidden_states")

    def modulated_input(self, block, args, kwargs):
        x = self.block_argument(args, kwargs, self.image_tokens, block)
        shift, scale = block.img_mod(self.block_argument(args, kwargs, "temb", block))[:2]
        return block.img_norm1(x) * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class JoyImageEditPlusAdapter(JoyImageEditAdapter):
    """JoyImage-Edit-Plus (diffusers ``JoyImageEditPlusTransformer3DModel``): JoyImage-Edit's stack on padded patches.

    Each ``JoyImageEditPlusTransformerBlock`` takes ``(hidden_states, encoder_hidden_states, temb,
    image_rotary_emb, attention_mask)`` and returns ``(hidden_states, encoder_hidden_states)``; the
    image tokens are the flat patch sequence (target, reference images, padding), all predicted. The
    head (``norm_out`` + ``proj_out``) reads them alone. Probe as in ``joyimage-edit``.
    """

    name = "joyimage-edit-plus"
    transformer_classes = ("JoyImageEditPlusTransformer3DModel",)


ADAPTERS = (
    CogVideoXAdapter, ConsisIDAdapter, CogView3PlusAdapter, CogView4Adapter, EasyAnimateAdapter, GlmImageAdapter,
    MochiAdapter, JoyImageEditAdapter, JoyImageEditPlusAdapter,
)
