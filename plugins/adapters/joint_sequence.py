"""Adapters of one family of diffusers transformers (see docs/adapters.md): single-stream models.

The main layers of these models see one sequence: image tokens joined with text (and, for some,
condition-image, gist or audio tokens) before the first hooked block, or image tokens alone that
read the text through attention. Where the image tokens are part of one joined sequence from the
first hooked block on, the whole sequence is predicted (the residual of tokens the head never
reads costs memory, not accuracy). Refiners that run before the main layers (Z-Image, Lumina2,
Bria FIBO 2, MiniMax-H3, Krea 2's text fusion) stay outside the stack: they run on every step,
exactly, so the stack input x is exact on predicted steps too.

Several of these models run time from 0 (noise) to 1 (clean): their adapters report ``1 - t`` as
the generation key, so the runtime's "timestep jumps back up" rule (used when the pipeline gives no
step index) and the 0-1000 noise-level scale that other hooks read stay right.
"""

from __future__ import annotations

import torch

from tap.adapter import argument
from tap._compat import block_modulate
from tap_plugins.adapters.generic import GenericAdapter


class _ReversedTime:
    """Time runs from 0 (noise) to 1 (clean): the generation key is the noise level ``1 - min(t)``."""

    def generation_key(self, args, kwargs):
        timestep = argument(args, kwargs, *self.timestep_argument)
        _, shape = super().generation_key(args, kwargs)
        if isinstance(timestep, torch.Tensor):
            return 1.0 - float(timestep.min()), shape
        return (None if timestep is None else 1.0 - float(timestep)), shape


def _z_image_probe(adapter: GenericAdapter, block, args, kwargs) -> torch.Tensor:
    """``attention_norm1(x) * scale_msa`` of a Z-Image-style block (Z-Image, Bria FIBO 2): one
    modulation from ``adaln_input``, or per token from ``adaln_noisy`` / ``adaln_clean`` by ``noise_mask``."""

    def get(name):
        return adapter.block_argument(args, kwargs, name, block)

    x, noise_mask = get("x"), get("noise_mask")
    if noise_mask is None:
        scale = block.adaLN_modulation(get("adaln_input")).unsqueeze(1).chunk(4, dim=2)[0]
    else:
        noisy = block.adaLN_modulation(get("adaln_noisy")).chunk(4, dim=1)[0]
        clean = block.adaLN_modulation(get("adaln_clean")).chunk(4, dim=1)[0]
        scale = torch.where(noise_mask.unsqueeze(-1) == 1, noisy.unsqueeze(1), clean.unsqueeze(1))
    return block.attention_norm1(x) * (1.0 + scale)


class ZImageAdapter(_ReversedTime, GenericAdapter):
    """Z-Image (``ZImageTransformer2DModel``): one list of single-stream blocks over [image; caption].

    The forward patchifies and embeds the latents (a list of per-sample tensors), runs
    ``noise_refiner`` on the image tokens and ``context_refiner`` on the caption tokens (and, in
    omni mode, ``siglip_refiner`` on the SigLIP tokens), then joins them into one padded
    ``unified`` sequence ([image; caption], or [caption; image; SigLIP] in omni mode) that the
    main ``layers`` update. The refiners stay outside the stack and run exactly on every step.
    Each ``ZImageTransformerBlock`` takes ``(x, attn_mask, freqs_cis, adaln_input, noise_mask,
    adaln_noisy, adaln_clean)`` and returns ``x`` alone, so a skipped block passes ``x`` through;
    the whole unified sequence is predicted, and the final layer and unpatchify read its image
    rows. The probe is ``attention_norm1(x) * scale_msa`` (per token in omni mode).
    ``controlnet_block_samples`` are added to ``unified`` between layers: calls that pass them sum
    each block's own residual (``adds_between_blocks``), so the additions stay exact.
    Time runs from 0 (noise) to 1 (clean).
    """

    name = "z-image"
    transformer_classes = ("ZImageTransformer2DModel",)
    timestep_argument = ("t", 1)
    hidden_states_argument = ("x", 0)
    block_lists = ("layers",)
    image_tokens = "x"
    conditioning = "adaln_input"
    adds_between_blocks = ("controlnet_block_samples",)

    def modulated_input(self, block, args, kwargs):
        return _z_image_probe(self, block, args, kwargs)


class Lumina2Adapter(_ReversedTime, GenericAdapter):
    """Lumina-Image 2.0 (``Lumina2Transformer2DModel``): one list of single-stream blocks over [caption; image].

    ``context_refiner`` (caption tokens) and ``noise_refiner`` (image tokens) run first and stay
    outside the stack, exact on every step; the forward then writes each sample's caption and
    image tokens into one joined sequence (caption lengths may differ, so the image rows sit at a
    per-sample offset) that ``layers`` update. Each ``Lumina2TransformerBlock`` takes
    ``(hidden_states, attention_mask, image_rotary_emb, temb)`` and returns ``hidden_states``; the
    whole joined sequence is predicted and the head (``norm_out`` then per-sample unpatchify) reads
    the image rows. The probe is the block's ``norm1(x, temb)`` (``LuminaRMSNormZero``).
    Time runs from 0 (noise) to 1 (clean).
    """

    name = "lumina2"
    transformer_classes = ("Lumina2Transformer2DModel",)
    timestep_argument = ("timestep", 1)
    block_lists = ("layers",)


class OmniGenAdapter(GenericAdapter):
    """OmniGen (``OmniGenTransformer2DModel``): one list of Phi-3-style decoder layers over [condition; time; image].

    The forward joins the multimodal condition tokens (text with input-image latents spliced in),
    one time token and the image tokens before the first block; each ``OmniGenBlock`` takes
    ``(hidden_states, attention_mask, image_rotary_emb)`` and returns ``hidden_states``. The whole
    sequence is predicted; the head (``norm``, the last image-token rows, ``norm_out`` with the
    timestep embedding, ``proj_out``) reads the image rows. The blocks have no AdaLN: the timestep
    enters as the time token, and the probe is the plain ``input_layernorm(x)``. A batch is never
    split into per-sample calls (``input_image_sizes`` is a dict keyed by batch row): a probe-driven
    schedule decides once per batch.
    """

    name = "omnigen"
    transformer_classes = ("OmniGenTransformer2DModel",)
    timestep_argument = ("timestep", 1)
    block_lists = ("layers",)
    conditioning = None  # no conditioning input: the probe is the block's plain RMSNorm
    per_sample_calls = False

    def modulated_input(self, block, args, kwargs):
        return block.input_layernorm(self.block_argument(args, kwargs, "hidden_states", block))


class Ideogram4Adapter(_ReversedTime, GenericAdapter):
    """Ideogram 4 (``Ideogram4Transformer2DModel``): one list of single-stream blocks over a packed sequence.

    The input is already one packed sequence of text and image positions (per-token
    ``indicator``); each ``Ideogram4TransformerBlock`` takes ``(hidden_states, attention_mask,
    image_rotary_emb, adaln_input)`` and returns ``hidden_states``. The whole packed sequence is
    predicted; the final layer projects every position and the pipeline keeps the image ones. The
    probe is ``attention_norm1(x) * (1 + scale_msa)`` from the block's ``adaln_modulation``.
    Time runs from 0 (noise) to 1 (clean).
    """

    name = "ideogram4"
    transformer_classes = ("Ideogram4Transformer2DModel",)
    timestep_argument = ("timestep", 1)
    block_lists = ("layers",)
    conditioning = "adaln_input"

    def modulated_input(self, block, args, kwargs):
        x = self.block_argument(args, kwargs, "hidden_states", block)
        scale = block.adaln_modulation(self.block_argument(args, kwargs, "adaln_input", block)).chunk(4, dim=-1)[0]
        return block.attention_norm1(x) * (1.0 + scale)


class Krea2Adapter(GenericAdapter):
    """Krea 2 (``Krea2Transformer2DModel``): one list of single-stream blocks over [text; image].

    ``text_fusion`` and ``txt_in`` turn the stacked text-encoder layers into text tokens outside
    the stack (exact on every step); the forward joins [text; image] before the first block. Each
    ``Krea2TransformerBlock`` takes ``(hidden_states, temb, image_rotary_emb, attention_mask)`` and
    returns ``hidden_states``; the whole joined sequence is predicted and the head slices the image
    tokens off its end. The probe is ``(1 + prescale) * norm1(x) + preshift`` with the block's
    ``scale_shift_table`` added to the shared ``temb``.
    """

    name = "krea2"
    transformer_classes = ("Krea2Transformer2DModel",)
    timestep_argument = ("timestep", 2)
    shared_arguments = ("position_ids",)  # (sequence, 3), common to every sample
    block_lists = ("transformer_blocks",)

    def modulated_input(self, block, args, kwargs):
        x = self.block_argument(args, kwargs, "hidden_states", block)
        modulation = self.block_argument(args, kwargs, "temb", block).unflatten(-1, (6, -1)) + block.scale_shift_table
        prescale, preshift = modulation.unbind(-2)[:2]
        return (1.0 + prescale) * block.norm1(x) + preshift


class MiniMaxH3Adapter(_ReversedTime, GenericAdapter):
    """MiniMax-H3 (``MiniMaxH3Transformer3DModel``): one list of single-stream blocks over packed text, video and audio.

    The forward refines the text (``token_refiner``, outside the stack, exact) and scatters text,
    video and audio rows into one packed sequence before the first block; each
    ``MiniMaxH3TransformerBlock`` takes ``(hidden_states, temb, adaln_indices, rotary_emb,
    attention_mask)`` and returns ``hidden_states``. The whole packed sequence is predicted, so the
    audio rows (read by ``audio_proj_out``) are predicted with the video rows (read by
    ``proj_out``). The probe is ``norm1(x) * (1 + scale_msa) + shift_msa``, the modulation picked
    per row by ``adaln_indices`` (timestep x modality). ``timestep`` holds the distinct timesteps
    of the packed rows (time from 0 = noise to 1 = clean); the generation key is the noisiest.
    """

    name = "minimax-h3"
    transformer_classes = ("MiniMaxH3Transformer3DModel",)
    timestep_argument = ("timestep", 3)
    shared_arguments = (  # the packed layout: one per sequence row, or one per distinct timestep
        "timestep", "timestep_indices", "token_tags", "position_ids", "video_indices", "audio_indices", "text_indices",
    )
    block_lists = ("transformer_blocks",)

    def modulated_input(self, block, args, kwargs):
        x = self.block_argument(args, kwargs, "hidden_states", block)
        rows = self.block_argument(args, kwargs, "adaln_indices", block)
        shift, scale = block.adaln_proj(self.block_argument(args, kwargs, "temb", block))[:2]
        return block.norm1(x) * (1.0 + scale.index_select(0, rows)) + shift.index_select(0, rows)


class BriaFibo2Adapter(GenericAdapter):
    """Bria FIBO 2 (``BriaFibo2Transformer2DModel``): one list of Z-Image-style blocks over image and gist tokens.

    ``noise_refiner`` runs on the image (and edit-context) tokens and the Perceiver resampler turns
    the text into gist tokens; both stay outside the stack and run exactly on every step. The
    forward joins [gist; image] (or [image; gist] when the prompts' gist counts differ) before the
    first of ``layers``; each ``BriaFibo2TransformerBlock`` takes ``(x, attn_mask, freqs_cis,
    adaln_input, noise_mask, adaln_noisy, adaln_clean, encoder_hidden_states,
    encoder_attention_mask)`` and returns ``x`` (injection blocks also cross-attend to a text
    bundle, inside the block). The whole joined sequence is predicted; the final layer reads the
    image rows. The probe is ``attention_norm1(x) * scale_msa``, per token by ``noise_mask``.
    """

    name = "bria-fibo2"
    transformer_classes = ("BriaFibo2Transformer2DModel",)
    timestep_argument = ("timestep", 1)
    block_lists = ("layers",)
    image_tokens = "x"
    conditioning = "adaln_noisy"

    def modulated_input(self, block, args, kwargs):
        return _z_image_probe(self, block, args, kwargs)


class QwenImage21Adapter(GenericAdapter):
    """Qwen-Image 2.1 (``QwenImage21Transformer2DModel``): one list of single-stream blocks over [text and condition images; target].

    The forward substitutes condition-image tokens into the text sequence and appends the target
    image's tokens before the first block; each ``QwenImage21TransformerBlock`` takes
    ``(hidden_states, modulation, rotary_emb, attention_mask, target_token_mask, layer_cache,
    kv_cache_mode, cache_write_slice, segments, key_valid)`` and returns ``hidden_states``; the
    head (``norm_out``, ``proj_out``) projects every row and the pipeline keeps the target's. With
    the pipeline's prefix KV cache (the default), the first step (``kv_cache_mode="extract"``)
    runs the whole sequence and stores the prefix keys and values; later steps (``"cached"``) run
    the target tokens alone. So the predicted tokens are the target image's (the last tokens: all
    of a cached call, the rows after ``cache_write_slice`` of an extract call), and an extract call
    always runs every block (a skipped one would leave the cache empty). Without a cache the whole
    sequence is predicted. The probe is ``img_norm1(x)`` scaled by the block's share of the shared
    ``modulation`` (text and condition rows from t = 0 under ``causal_condition``). A batch is never
    split into per-sample calls (each would overwrite the one shared KV cache): a probe-driven
    schedule decides once per batch.
    """

    name = "qwen-image-2.1"
    per_sample_calls = False
    transformer_classes = ("QwenImage21Transformer2DModel",)
    timestep_argument = ("timestep", 2)
    block_lists = ("transformer_blocks",)
    conditioning = "modulation"
    image_position = "end"  # the predicted tokens are the last ones of every block's output

    def full_compute_reason(self, args, kwargs):
        if argument(args, kwargs, "kv_cache_mode", 8) == "extract":
            return "Qwen-Image 2.1 fills its prefix KV cache in this call"
        return None

    def _prefix(self, args, kwargs, block=None) -> int:
        """Rows before the predicted ones: the cached prefix of an extract call, else none."""
        cut = self.block_argument(args, kwargs, "cache_write_slice", block)
        return 0 if cut is None else cut.stop

    def stack_input(self, args, kwargs):
        x = self.block_argument(args, kwargs, "hidden_states")[:, self._prefix(args, kwargs):]
        self.sizes = ((x.shape[1], x.shape[-1]),)
        return x

    def probe_output(self, output):
        return output[:, -self.sizes[0][0]:]

    def skip_output(self, args, kwargs, hidden_states):
        prefix = self._prefix(args, kwargs)
        if not prefix:
            return hidden_states
        return torch.cat([self.block_argument(args, kwargs, "hidden_states")[:, :prefix], hidden_states], dim=1)

    def modulated_input(self, block, args, kwargs):
        x = self.block_argument(args, kwargs, "hidden_states", block)
        attention = self.block_argument(args, kwargs, "modulation", block).chunk(2, dim=-1)[0]
        mask = self.block_argument(args, kwargs, "target_token_mask", block)
        modulated, _ = block_modulate(block, block.img_norm1(x), attention, mask)
        return modulated[:, self._prefix(args, kwargs, block):]


class ErnieImageAdapter(GenericAdapter):
    """ERNIE-Image (``ErnieImageTransformer2DModel``): one list of shared-AdaLN blocks over [image; text], sequence first.

    The forward joins image and text tokens into ``x`` shaped [S, B, D] (sequence first) before the
    first block; each ``ErnieImageSharedAdaLNBlock`` takes ``(x, rotary_pos_emb, temb,
    attention_mask)``, ``temb`` being the six shared modulation tensors, and returns ``x``. The
    adapter hands the runtime [B, S, D] views; the whole sequence is predicted, and the head
    (``final_norm``, ``final_linear``) keeps the first ``N_img`` rows. The probe is
    ``adaLN_sa_ln(x) * (1 + scale_msa) + shift_msa``.
    """

    name = "ernie-image"
    transformer_classes = ("ErnieImageTransformer2DModel",)
    timestep_argument = ("timestep", 1)
    block_lists = ("layers",)
    image_tokens = "x"

    def stack_input(self, args, kwargs):
        x = self.block_argument(args, kwargs, "x").transpose(0, 1)
        self.sizes = ((x.shape[1], x.shape[-1]),)
        return x

    def stack_output(self, output):
        return output.transpose(0, 1)

    def probe_output(self, output):
        return output.transpose(0, 1)

    def skip_output(self, args, kwargs, hidden_states):
        return hidden_states.transpose(0, 1)

    def modulated_input(self, block, args, kwargs):
        x = self.block_argument(args, kwargs, "x", block)
        shift, scale = self.block_argument(args, kwargs, "temb", block)[:2]
        normed = block.adaLN_sa_ln(x)
        return (normed.float() * (1 + scale.float()) + shift.float()).to(normed.dtype).transpose(0, 1)


class PRXAdapter(GenericAdapter):
    """PRX (``PRXTransformer2DModel``): one list of blocks over the image tokens, text read in attention.

    Each ``PRXBlock`` takes ``(hidden_states, encoder_hidden_states, temb, image_rotary_emb,
    attention_mask)`` and returns the image tokens alone (the text tokens are keys and values of
    its attention, never updated), so a skipped block passes ``hidden_states`` through and the head
    (``final_layer``, then ``seq2img``) reads the image tokens only. The probe is
    ``(1 + scale) * img_pre_norm(x) + shift`` from the block's ``modulation``.
    """

    name = "prx"
    transformer_classes = ("PRXTransformer2DModel",)
    timestep_argument = ("timestep", 1)
    block_lists = ("blocks",)

    def modulated_input(self, block, args, kwargs):
        x = self.block_argument(args, kwargs, "hidden_states", block)
        shift, scale, _ = block.modulation(self.block_argument(args, kwargs, "temb", block))[0]
        return (1.0 + scale) * block.img_pre_norm(x) + shift


class NucleusMoEImageAdapter(GenericAdapter):
    """NucleusMoE-Image (``NucleusMoEImageTransformer2DModel``): one list of (MoE) blocks over the image tokens.

    Each ``NucleusMoEImageTransformerBlock`` takes ``(hidden_states, encoder_hidden_states, temb,
    image_rotary_emb, attention_kwargs)`` and returns the image tokens alone: the text is
    projected per block into extra keys and values of its attention and never updated, so the
    head (``norm_out``, ``proj_out``) reads the image tokens only. The probe is
    ``pre_attn_norm(x) * (1 + scale1)`` from the block's ``img_mod``.
    """

    name = "nucleusmoe-image"
    transformer_classes = ("NucleusMoEImageTransformer2DModel",)
    timestep_argument = ("timestep", 4)
    block_lists = ("transformer_blocks",)

    def modulated_input(self, block, args, kwargs):
        x = self.block_argument(args, kwargs, "hidden_states", block)
        scale = block.img_mod(self.block_argument(args, kwargs, "temb", block)).unsqueeze(1).chunk(4, dim=-1)[0]
        return block.pre_attn_norm(x) * (1.0 + scale)


ADAPTERS = (
    ZImageAdapter, Lumina2Adapter, OmniGenAdapter, Ideogram4Adapter, Krea2Adapter, MiniMaxH3Adapter, BriaFibo2Adapter,
    QwenImage21Adapter, ErnieImageAdapter, PRXAdapter, NucleusMoEImageAdapter,
)
