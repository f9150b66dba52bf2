"""Adapters of one family of diffusers transformers (see docs/adapters.md): video models whose blocks
carry more than the image tokens, a second (audio or text) stream or prepended history tokens.

* LTX-2 (``LTX2VideoTransformer3DModel``): one list of audio-video blocks updating the video and
  the audio tokens, both read by their own heads after the stack; both are predicted.
* Kandinsky 5 (``Kandinsky5Transformer3DModel``): text encoder blocks, then visual decoder blocks
  that update the video tokens alone.
* Kandinsky 6 (``Kandinsky6Transformer3DModel``): text encoder blocks per modality, then fused
  video/audio decoder blocks returning ``(vis, aud)``; both are predicted when audio is given.
* Kandinsky 6 SR (``Kandinsky6SRTransformer3DModel``): one list of text-free self-attention blocks.
* HunyuanVideo 1.5 (``HunyuanVideo15Transformer3DModel``): one list of dual-stream blocks.
* HunyuanVideo FramePack (``HunyuanVideoFramepackTransformer3DModel``): HunyuanVideo's blocks over
  ``[history; video]`` tokens.
"""

from __future__ import annotations

import torch

from tap.adapter import argument
from tap_plugins.adapters.generic import GenericAdapter
from tap_plugins.adapters.hunyuan_video import HunyuanVideoAdapter


def _largest_timestep(adapter: GenericAdapter, args: tuple, kwargs: dict) -> float | None:
    """The largest entry of a per-token timestep (conditioning tokens sit at 0), else the scalar."""
    timestep = argument(args, kwargs, *adapter.timestep_argument)
    return float(timestep.max()) if isinstance(timestep, torch.Tensor) else timestep


class LTX2VideoAdapter(GenericAdapter):
    """LTX-2 (diffusers ``LTX2VideoTransformer3DModel``): audio-video blocks, both streams predicted.

    Each ``LTX2VideoTransformerBlock`` is called by keyword with the video tokens
    ``hidden_states`` [B, N, D] and the audio tokens ``audio_hidden_states`` [B, M, D_a] (plus text,
    timestep modulations, RoPE and masks) and returns ``(hidden_states, audio_hidden_states)``: the
    two streams exchange information through audio-to-video and video-to-audio cross-attention in
    every block. After the stack the video head (``norm_out``/``proj_out``) reads the video tokens and
    the audio head (``audio_norm_out``/``audio_proj_out``) the audio tokens, so both are predicted
    (``streams``; the audio stream, usually narrower, is zero-padded to the video width while joined)
    and a skipped block passes both through. The text streams are inputs of every block, never
    updated. Everything before the stack (patch projections, timestep and cross-attention
    modulations, caption projections, RoPE) and the two heads run every step, exactly. The probe is
    the first block's ``norm1(x) * (1 + scale_msa) + shift_msa`` from its ``scale_shift_table`` and
    ``temb`` (per token under image-to-video's per-token timestep). STG (``perturbation_mask`` /
    ``spatio_temporal_guidance_blocks``) only changes attention inside the chosen blocks and stays
    covered by the residual of a full step with the same inputs.
    """

    name = "ltx2-video"
    transformer_classes = ("LTX2VideoTransformer3DModel",)
    timestep_argument = ("timestep", 4)
    block_lists = ("transformer_blocks",)
    block_outputs = ("hidden_states", "audio_hidden_states")
    streams = ("audio_hidden_states",)

    def generation_key(self, args, kwargs):
        """Image-to-video passes a per-token timestep whose first-frame tokens stay at 0: use the largest."""
        _, shape = super().generation_key(args, kwargs)
        return _largest_timestep(self, args, kwargs), shape

    def modulated_input(self, block, args, kwargs):
        x = self.block_argument(args, kwargs, "hidden_states", block)
        temb = self.block_argument(args, kwargs, "temb", block)
        shift, scale = block.get_mod_params(block.scale_shift_table, temb, x.shape[0])[:2]
        return block.norm1(x) * (1 + scale) + shift


class Kandinsky5Adapter(GenericAdapter):
    """Kandinsky 5 (diffusers ``Kandinsky5Transformer3DModel``): the visual decoder blocks.

    The forward first runs ``text_transformer_blocks`` (encoder blocks over the text tokens alone)
    and then ``visual_transformer_blocks``: each ``Kandinsky5TransformerDecoderBlock`` is called
    positionally with ``(visual_embed, text_embed, time_embed, rope, sparse_params)`` and returns the
    video tokens alone (text enters through cross-attention), so a skipped block returns its
    ``visual_embed``. Only the decoder blocks form the stack; the text blocks stay outside it and
    run every step, exactly (the decoder blocks and the head read their output, never updated
    after). The video tokens are flattened (``fractal_flatten``) before the stack and unflattened
    for the head (``out_layer``), which reads them alone; both run every step. The probe is the first
    block's self-attention input ``self_attention_norm(x) * (1 + scale) + shift`` from its
    ``visual_modulation(time_embed)``.
    """

    name = "kandinsky5"
    transformer_classes = ("Kandinsky5Transformer3DModel",)
    timestep_argument = ("timestep", 2)
    block_lists = ("visual_transformer_blocks",)
    image_tokens = "visual_embed"
    conditioning = "time_embed"

    def modulated_input(self, block, args, kwargs):
        x = self.block_argument(args, kwargs, "visual_embed", block)
        time_embed = self.block_argument(args, kwargs, "time_embed", block)
        self_attention = torch.chunk(block.visual_modulation(time_embed).unsqueeze(dim=1), 3, dim=-1)[0]
        shift, scale, _ = torch.chunk(self_attention, 3, dim=-1)
        return (block.self_attention_norm(x.float()) * (scale.float() + 1.0) + shift.float()).type_as(x)


class Kandinsky6Adapter(GenericAdapter):
    """Kandinsky 6 (diffusers ``Kandinsky6Transformer3DModel``): fused video/audio decoder blocks.

    The forward first runs ``video_text_transformer_blocks`` and ``audio_text_transformer_blocks``
    (encoder blocks over each modality's text tokens); they stay outside the stack and run every
    step, exactly. The stack is ``visual_transformer_blocks``: each
    ``Kandinsky6FusedTransformerDecoderBlock`` is called positionally with ``(vis, aud, text_v,
    text_a, (t_v, t_a), vis_rope, aud_rope, attn_mask)`` and returns ``(vis, aud)``, the video and
    the audio tokens exchanging information through cross-modal attention. After the stack the
    video head (``out_layer``) reads ``vis`` and the audio head (``audio_out_layer``) reads ``aud``, so
    both are predicted (``streams``, the audio zero-padded to the video width while joined) and a
    skipped block passes both through. Without ``audio_hidden_states`` the blocks get ``aud=None``
    and return it; the video tokens are then predicted alone. Embeddings, RoPE and both heads run
    every step, exactly. The probe is the first block's video self-attention input
    ``video_dec_block.self_attention_norm(vis)`` scaled and shifted by its
    ``video_dec_block.visual_modulation(t_v)``.
    """

    name = "kandinsky6"
    transformer_classes = ("Kandinsky6Transformer3DModel",)
    timestep_argument = ("timestep", 3)
    block_lists = ("visual_transformer_blocks",)
    image_tokens = "vis"
    block_outputs = ("vis", "aud")
    streams = ("aud",)
    conditioning = "time_embed"

    def join(self, streams, record=True):
        """Video-only calls pass ``aud=None``: join the streams that are there."""
        return super().join([stream for stream in streams if stream is not None], record)

    def modulated_input(self, block, args, kwargs):
        x = self.block_argument(args, kwargs, "vis", block)
        t_v, _ = self.block_argument(args, kwargs, "time_embed", block)
        video = block.video_dec_block
        self_attention = torch.chunk(video.visual_modulation(t_v), 3, dim=-1)[0]
        shift, scale, _ = torch.chunk(self_attention, 3, dim=-1)
        return _scale_shift(video.self_attention_norm(x.float()), x, scale, shift)


class Kandinsky6SRAdapter(GenericAdapter):
    """Kandinsky 6 super-resolution (diffusers ``Kandinsky6SRTransformer3DModel``): one block list.

    Each ``Kandinsky6SRTransformerBlock`` is called positionally with ``(hidden_states, temb,
    rotary_emb, sparse_params)`` and returns the video tokens alone (the model is text-free), so a
    skipped block returns its ``hidden_states``. The tokens are regrouped into 8x8 NABLA blocks
    before the stack and merged back for the head (``out_layer``), which reads them alone; both run
    every step, exactly. The probe is the first block's ``self_attention_norm(x)`` scaled and shifted
    by its ``visual_modulation(temb)``.
    """

    name = "kandinsky6-sr"
    transformer_classes = ("Kandinsky6SRTransformer3DModel",)
    timestep_argument = ("timestep", 1)
    block_lists = ("visual_transformer_blocks",)

    def modulated_input(self, block, args, kwargs):
        x = self.block_argument(args, kwargs, "hidden_states", block)
        temb = self.block_argument(args, kwargs, "temb", block)
        self_attention = torch.chunk(block.visual_modulation(temb), 2, dim=-1)[0]
        shift, scale, _ = torch.chunk(self_attention, 3, dim=-1)
        return _scale_shift(block.self_attention_norm(x.float()), x, scale, shift)


def _scale_shift(normed: torch.Tensor, x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Kandinsky 6's ``apply_scale_shift``: a [B, D] modulation broadcast over the tokens, in float32."""
    if x.ndim > 2 and scale.ndim == 2:
        shape = (scale.shape[0],) + (1,) * (x.ndim - 2) + (scale.shape[-1],)
        scale, shift = scale.reshape(shape), shift.reshape(shape)
    return (normed * (scale.float() + 1.0) + shift.float()).to(dtype=x.dtype)


class HunyuanVideo15Adapter(GenericAdapter):
    """HunyuanVideo 1.5 (diffusers ``HunyuanVideo15Transformer3DModel``): one list of dual-stream blocks.

    Each ``HunyuanVideo15TransformerBlock`` is called positionally with ``(hidden_states,
    encoder_hidden_states, temb, attention_mask, freqs_cis)`` and returns ``(hidden_states,
    encoder_hidden_states)``; the head (``norm_out``/``proj_out``) reads the video tokens alone, so the
    text stream is not predicted and a skipped block passes both through. The token refiner, the
    ByT5 and image projections and the reordering of the joined condition tokens run before the
    stack every step, exactly. The probe is the first block's ``norm1(x, emb=temb)``.
    """

    name = "hunyuan-video-15"
    transformer_classes = ("HunyuanVideo15Transformer3DModel",)
    timestep_argument = ("timestep", 1)
    block_lists = ("transformer_blocks",)
    block_outputs = ("hidden_states", "encoder_hidden_states")


class HunyuanVideoFramepackAdapter(HunyuanVideoAdapter):
    """HunyuanVideo FramePack (diffusers ``HunyuanVideoFramepackTransformer3DModel``): HunyuanVideo's blocks.

    Dual-stream ``transformer_blocks`` then ``single_transformer_blocks``, all called positionally
    with ``(hidden_states, encoder_hidden_states, temb, attention_mask, image_rotary_emb)`` and
    returning ``(hidden_states, encoder_hidden_states)``. Before the stack the clean and 2x/4x
    history latents are patch-embedded and prepended to the video tokens, so the blocks' image
    tokens are ``[history; video]`` from the first block on; the whole sequence is predicted (the
    history part is recomputed identically every step and its prediction discarded), and the head
    slices the last ``original_context_length`` (video) tokens from it. The text stream (token
    refiner output joined after the image-projection tokens) is not read after the stack, so a
    skipped block passes it through. The probe is the first dual block's ``norm1(x, emb=temb)``.
    """

    name = "hunyuan-video-framepack"
    transformer_classes = ("HunyuanVideoFramepackTransformer3DModel",)
    shared_arguments = ("indices_latents", "indices_latents_clean", "indices_latents_history_2x", "indices_latents_history_4x")


ADAPTERS = (
    LTX2VideoAdapter, Kandinsky5Adapter, Kandinsky6Adapter, Kandinsky6SRAdapter, HunyuanVideo15Adapter,
    HunyuanVideoFramepackAdapter,
)
