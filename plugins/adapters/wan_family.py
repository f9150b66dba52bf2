"""Adapters of the Wan family of diffusers transformers (see docs/adapters.md).

Wan 2.1 itself is :class:`~tap_plugins.adapters.wan.WanAdapter`. Its relatives here all run one list
``blocks`` of Wan-style self + cross-attention blocks that return the video tokens alone, and are
probed on the first block's own AdaLN modulation of ``norm1`` (``scale_shift_table`` or
``modulation`` plus ``temb``); Motif-Video is a dual + single stream model.

Two of them add something to the video tokens between blocks on every call. VACE's hints depend
only on inputs computed before the loop: its adapter sets ``residual_per_block``, so the cached
residual is the sum of each block's own residual and a predicted step adds this step's hints once.
Wan Animate's face adapters read the hidden states after a block, which a predicted step does not
have: its skipped blocks return the predicted ``x + r_hat`` itself (:class:`PassPredicted`), so face
outputs between hooked blocks are forecast inside r, not added again.
"""

from __future__ import annotations

import torch

from tap.adapter import argument
from tap_plugins.adapters.generic import GenericAdapter
from tap_plugins.adapters.wan import WanAdapter


class PassPredicted:
    """Mixin: skipped blocks return the first block's predicted output itself, not their own input.

    For block stacks whose loop adds something state-dependent to the image tokens between blocks
    (Wan Animate's face adapters read the block output): on a full step that addition is inside r,
    so on a predicted step the blocks after the first discard whatever the loop added before them
    and hand on ``x + r_hat`` unchanged; an addition after the last hooked block is outside r and
    still applied. Only for blocks that return the image tokens alone.
    """

    predicted: torch.Tensor | None = None

    def skip_output(self, args, kwargs, hidden_states):
        self.predicted = hidden_states
        return super().skip_output(args, kwargs, hidden_states)

    def skip_block(self, block, args, kwargs):
        predicted = self.predicted
        if block is self.last_block:
            self.predicted = None  # hold no tensor between steps
        return super().skip_block(block, args, kwargs) if predicted is None else predicted


class WanVACEAdapter(WanAdapter):
    """Wan VACE (``WanVACETransformer3DModel``): the Wan block list, VACE control blocks outside it.

    Stack: ``blocks`` (``WanTransformerBlock``), returning the video tokens alone; a skipped block
    passes them through. The head (``norm_out``/``proj_out``) reads only the video tokens: they are
    predicted, nothing else is. Outside the stack, every step and exactly: the ``vace_blocks``, which
    run before the main loop on the patch-embedded latents and the control latents and produce one
    hint per entry of ``config.vace_layers``. Between blocks the loop always adds them::

        hidden_states = block(hidden_states, encoder_hidden_states, timestep_proj, rotary_emb)
        if i in self.config.vace_layers:
            control_hint, scale = control_hidden_states_list.pop()
            hidden_states = hidden_states + control_hint.to(hidden_states.device) * scale

    (``control_hidden_states`` is required, so this always happens). ``residual_per_block``: the
    cached residual is the sum of the blocks' own residuals, without the hints, and on a predicted
    step the loop adds this step's hints (the VACE blocks run every step) to the passed-through
    ``x + r_hat``, once. Probe: the first block's modulated ``norm1`` input, as for Wan.
    """

    name = "wan-vace"
    transformer_classes = ("WanVACETransformer3DModel",)
    shared_arguments = ("control_hidden_states_scale",)  # one scale per VACE layer, not per sample
    residual_per_block = True  # VACE hints are added between blocks on every call


class WanAnimateAdapter(PassPredicted, WanAdapter):
    """Wan 2.2 Animate (``WanAnimateTransformer3DModel``): the Wan block list with face adapters between blocks.

    Stack: ``blocks`` (Wan blocks returning the video tokens alone; a skipped block passes them
    through). The head reads only the video tokens, which are predicted. Outside the stack, every
    step and exactly: patch and pose embedding, the motion and face encoders on ``face_pixel_values``
    (required). Between blocks the loop always runs a face adapter (cross-attention to the motion
    vectors) after every ``inject_face_latents_blocks``-th block and adds its output::

        if block_idx % self.config.inject_face_latents_blocks == 0:
            face_adapter_output = self.face_adapter[face_adapter_block_idx](hidden_states, motion_vec)
            hidden_states = face_adapter_output + hidden_states

    A face adapter reads the block's output, which a predicted step does not compute, so face
    outputs after blocks other than the last stay inside r: on a predicted step the skipped blocks
    return the first block's ``x + r_hat`` itself (:class:`PassPredicted`), dropping what the face
    adapters added before them, and a face adapter after the last block (when its index is a
    multiple) acts on ``x + r_hat`` and is added, as on a full step. The face adapters still run on
    predicted steps. (Summing block residuals instead, ``residual_per_block``, would apply them to
    ``x + r_hat`` rather than to the intermediate states: 2 to 8 times the error on tiny models.)
    Probe: the first block's modulated ``norm1`` input, as for Wan.
    """

    name = "wan-animate"
    transformer_classes = ("WanAnimateTransformer3DModel",)


class WanAnimate2Adapter(WanAdapter):
    """Wan-Animate-2 (``WanAnimate2Transformer3DModel``): one list of in-context reference blocks.

    Stack: ``blocks`` (``WanAnimate2TransformerBlock``, called as ``block(hidden_states,
    kv_cache=..., **block_kwargs)``), returning the video tokens alone; a skipped block passes them
    through. The head (``self.head``) reads only the video tokens, which are predicted; nothing runs
    between the blocks (unconditional calls skip block 9 in the model's own loop, which only matters
    when block 9 is the last block). The latents are a list of per-sample tensors. A reference pass
    (``kv_cache_mode="extract"``) writes every layer's K/V cache inside the blocks, so such calls run
    every block; generation passes (``"cached"``) only read it and are predicted. Probe: the first
    block's ``norm1`` input modulated by its ``modulation`` plus ``temb``.
    """

    name = "wan-animate-2"
    transformer_classes = ("WanAnimate2Transformer3DModel",)
    per_sample_calls = False  # the reference K/V cache holds every row of the batch
    block_arguments = None  # read from WanAnimate2TransformerBlock.forward

    def generation_key(self, args, kwargs):
        timestep = argument(args, kwargs, *self.timestep_argument)
        latents = argument(args, kwargs, *self.hidden_states_argument)
        shape = tuple(tuple(u.shape) for u in latents) if isinstance(latents, (list, tuple)) else tuple(latents.shape)
        return float(timestep.max()) if isinstance(timestep, torch.Tensor) else timestep, shape

    def full_compute_reason(self, args, kwargs):
        if argument(args, kwargs, "kv_cache_mode", 5) == "extract":
            return "the Wan-Animate-2 reference pass (kv_cache_mode='extract') writes the K/V cache in every block"
        return None

    def modulated_input(self, block, args, kwargs):
        x = self.stack_input(args, kwargs)
        modulation = block.modulation + self.block_argument(args, kwargs, "temb")
        shift, scale = modulation[:, :2].chunk(2, dim=1)  # [B, 6, D] as in the block
        return (block.norm1(x.float()) * (1 + scale) + shift).type_as(x)


class SkyReelsV2Adapter(WanAdapter):
    """SkyReels-V2 (``SkyReelsV2Transformer3DModel``): the Wan block list with an attention mask.

    Stack: ``blocks`` (``SkyReelsV2TransformerBlock``: ``(hidden_states, encoder_hidden_states,
    temb, rotary_emb, attention_mask)``), returning the video tokens alone; a skipped block passes
    them through. The head reads only the video tokens, which are predicted; nothing runs between
    the blocks. Diffusion forcing (``enable_diffusion_forcing``, per-frame timesteps) gives a
    per-token ``temb`` [B, 6, N, D]; the step is keyed on the largest timestep. Probe: the first
    block's modulated ``norm1`` input (per token under diffusion forcing).
    """

    name = "skyreels-v2"
    transformer_classes = ("SkyReelsV2Transformer3DModel",)
    block_arguments = None  # read from SkyReelsV2TransformerBlock.forward

    def modulated_input(self, block, args, kwargs):
        x = self.stack_input(args, kwargs)
        temb = self.block_argument(args, kwargs, "temb").float()
        if temb.ndim == 4:  # [B, 6, N, D]: diffusion forcing, one modulation per token
            shift, scale = (block.scale_shift_table.unsqueeze(2) + temb)[:, :2].unbind(1)
        else:  # [B, 6, D]
            shift, scale = (block.scale_shift_table + temb)[:, :2].chunk(2, dim=1)
        return (block.norm1(x.float()) * (1 + scale) + shift).type_as(x)


class ChronoEditAdapter(WanAdapter):
    """ChronoEdit (``ChronoEditTransformer3DModel``): Wan 2.1's block list with temporal-skip RoPE.

    Stack: ``blocks`` (a copy of ``WanTransformerBlock``), returning the video tokens alone; a
    skipped block passes them through. The head reads only the video tokens, which are predicted;
    nothing runs between the blocks. Probe: the first block's modulated ``norm1`` input, as for Wan.
    """

    name = "chronoedit"
    transformer_classes = ("ChronoEditTransformer3DModel",)


class HeliosAdapter(WanAdapter):
    """Helios (``HeliosTransformer3DModel``): Wan-style blocks over [history; current] video tokens.

    The short, mid and long history latents are patch-embedded and joined before the current
    frames' tokens before the first block, and every block (``HeliosTransformerBlock``, with
    ``original_context_length``) works on that one sequence and returns it alone; a skipped block
    passes it through. The whole joined sequence is predicted (the head, ``HeliosOutputNorm``, keeps
    its last ``original_context_length`` tokens). Nothing runs between the blocks. ``temb`` is per
    token ([B, N, 6, D], the history at timestep 0). Probe: the first block's modulated ``norm1``
    input per token.
    """

    name = "helios"
    transformer_classes = ("HeliosTransformer3DModel",)
    block_arguments = None  # read from HeliosTransformerBlock.forward


class AnyFlowAdapter(WanAdapter):
    """AnyFlow (``AnyFlowTransformer3DModel``): the Wan 2.1 block list with a dual-timestep embedding.

    Stack: ``blocks`` (``AnyFlowTransformerBlock``: ``(hidden_states, encoder_hidden_states, temb,
    rotary_emb, attention_mask, ...)``), returning the video tokens alone; a skipped block passes
    them through. The head reads only the video tokens, which are predicted; nothing runs between
    the blocks. Latents are [B, F, C, H, W]; ``timestep`` (source t) and ``r_timestep`` (target r)
    are per frame and ``temb`` per token [B, N, 6, D]; the step is keyed on the largest t. Probe: the
    first block's modulated ``norm1`` input per token.
    """

    name = "anyflow"
    transformer_classes = ("AnyFlowTransformer3DModel",)
    block_arguments = None  # read from AnyFlowTransformerBlock.forward


class AnyFlowFARAdapter(AnyFlowAdapter):
    """AnyFlow FAR (``AnyFlowFARTransformer3DModel``): AnyFlow's blocks with causal FAR attention.

    ``forward`` dispatches to ``_forward_inference`` (KV cache given: the autoregressive sampling
    step), ``_forward_cache`` (``kv_cache_flag["is_cache_step"]``: cache prefill) or
    ``_forward_train`` (no cache), and each loops over ``self.blocks`` calling ``block(hidden_states,
    encoder_hidden_states, timestep_proj, rotary_emb, attention_mask[, kv_cache[i], kv_cache_flag])``.
    Stack: ``blocks``, returning the tokens alone; a skipped block passes them through. Inference
    works on the current chunk's tokens only (past chunks are read from the KV cache, which it does
    not write): they are predicted. The training path's one sequence (compressed context, full
    frames, clean copy, which the head slices) is predicted whole. Cache-prefill calls write every
    block's KV cache, so they run every block. Nothing runs between the blocks. Probe: the first
    block's modulated ``norm1`` input per token.
    """

    name = "anyflow-far"
    transformer_classes = ("AnyFlowFARTransformer3DModel",)
    per_sample_calls = False  # the KV cache holds every row (batch on dim 1), chunk_partition is per chunk

    def full_compute_reason(self, args, kwargs):
        flag = argument(args, kwargs, "kv_cache_flag", 9)
        if argument(args, kwargs, "kv_cache", 8) is not None and isinstance(flag, dict) and flag.get("is_cache_step"):
            return "an AnyFlow FAR cache-prefill call (kv_cache_flag['is_cache_step']) writes every block's KV cache"
        return None


class MotifVideoAdapter(GenericAdapter):
    """Motif-Video (``MotifVideoTransformer3DModel``): dual-stream blocks, then single-stream blocks.

    Stack: ``transformer_blocks`` (``MotifVideoTransformerBlock``) then the encoder part of
    ``single_transformer_blocks`` (``MotifVideoSingleTransformerBlock``, which joins and splits the
    text internally); both take ``(hidden_states, encoder_hidden_states, temb, ...)`` and return
    ``(hidden_states, encoder_hidden_states)``, which a skipped block passes through. The head reads
    only the video tokens, which are predicted; the text stream is not read after the stack. Nothing
    runs between the blocks. With ``num_decoder_layers > 0`` the last single blocks are a decoder
    that re-reads the patch embeddings with the encoder's output as context: they stay outside the
    stack and run every step, exactly. Probe: the first block's ``norm1`` (``AdaLayerNormZero``) on
    the video tokens (``norm``, ``AdaLayerNormZeroSingle``, when there are no dual-stream blocks).
    """

    name = "motif-video"
    transformer_classes = ("MotifVideoTransformer3DModel",)
    timestep_argument = ("timestep", 1)
    block_lists = ("transformer_blocks", "single_transformer_blocks")
    block_outputs = ("hidden_states", "encoder_hidden_states")

    def blocks(self, transformer):
        found = super().blocks(transformer)
        decoder = getattr(transformer, "num_decoder_layers", 0)
        if decoder > 0:
            for block in found[-decoder:]:
                del self.list_of[id(block)]
            found = found[:-decoder]
            self.first_block, self.last_block = (found[0], found[-1]) if found else (None, None)
        return found

    def modulated_input(self, block, args, kwargs):
        norm = block.norm1 if hasattr(block, "norm1") else block.norm
        x = self.block_argument(args, kwargs, "hidden_states", block)
        return norm(x, emb=self.block_argument(args, kwargs, "temb", block))[0]


ADAPTERS = (
    WanVACEAdapter, WanAnimateAdapter, WanAnimate2Adapter, SkyReelsV2Adapter, ChronoEditAdapter, HeliosAdapter,
    AnyFlowAdapter, AnyFlowFARAdapter, MotifVideoAdapter,
)
