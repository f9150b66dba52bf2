"""Adapters of the FLUX.1 relatives and other double-then-single-stream image DiTs (see docs/adapters.md).

FLUX.1 itself and FLUX.2 have their own modules (:mod:`tap_plugins.adapters.flux`,
:mod:`tap_plugins.adapters.flux2`). The classes here share FLUX.1's layout: a list of dual-stream
blocks (image and text tokens in two streams, joint attention) followed by a list of single-stream
blocks, then a head that reads the image tokens alone, so the text stream never needs predicting.
They differ in how the single blocks carry the two streams:

* streams kept apart (the block joins and splits them inside): Bria, LongCat-Image, Ovis-Image,
  HunyuanImage 2.1; a skipped block passes both streams through.
* one joined sequence built by the transformer (Chroma, Bria FIBO, AuraFlow: ``[text; image]``;
  HiDream-I1: ``[image; text; llama]``; FLUX.3: ``[image; reference images]`` with text apart): the
  last list's output is cut to the image tokens (``image_position``), found by the stack input's
  token count.
"""

from __future__ import annotations

import torch

from tap_plugins.adapters.generic import GenericAdapter

FLUX_BLOCK_LISTS = ("transformer_blocks", "single_transformer_blocks")
TEXT_IMAGE = ("encoder_hidden_states", "hidden_states")


class _FluxLikeAdapter(GenericAdapter):
    """FLUX.1's layout: double then single blocks, both returning ``(encoder_hidden_states, hidden_states)``."""

    block_lists = FLUX_BLOCK_LISTS
    block_outputs = TEXT_IMAGE
    shared_arguments = ("img_ids", "txt_ids")  # [N, 3] position ids, common to the batch


class BriaAdapter(_FluxLikeAdapter):
    """Bria 3.2 (``BriaTransformer2DModel``): FLUX.1's blocks under other names.

    Double blocks (``BriaTransformerBlock``) and single blocks (``BriaSingleTransformerBlock``,
    which joins ``[text; image]`` inside and splits it again) all take ``(hidden_states,
    encoder_hidden_states, temb, image_rotary_emb, ...)`` and return ``(encoder_hidden_states,
    hidden_states)``; a skipped block passes both through. The head (``norm_out`` + ``proj_out``)
    reads the image tokens alone: image tokens only are predicted. The probe is the first double
    block's ``norm1(x, emb=temb)`` (``AdaLayerNormZero``). Nothing runs between the blocks but the
    optional ControlNet residuals, added to the image tokens after each block: calls that pass
    ``controlnet_block_samples`` or ``controlnet_single_block_samples`` cache the sum of each block's
    own residual, so those residuals are added once, exactly, on predicted steps too. The
    timestep is the scheduler's (0 to 1000), not divided.
    """

    name = "bria"
    transformer_classes = ("BriaTransformer2DModel",)
    timestep_argument = ("timestep", 3)
    adds_between_blocks = ("controlnet_block_samples", "controlnet_single_block_samples")


class LongCatImageAdapter(_FluxLikeAdapter):
    """LongCat-Image (``LongCatImageTransformer2DModel``): FLUX.1's blocks under other names.

    Double and single blocks take ``(hidden_states, encoder_hidden_states, temb,
    image_rotary_emb)`` and return ``(encoder_hidden_states, hidden_states)`` (the single block
    joins ``[text; image]`` inside and splits it again); a skipped block passes both through. The
    head reads the image tokens alone: image tokens only are predicted. The probe is the first
    double block's ``norm1(x, emb=temb)``. Nothing runs between the blocks; the embedders before
    them run every step, exactly.
    """

    name = "longcat-image"
    transformer_classes = ("LongCatImageTransformer2DModel",)
    timestep_argument = ("timestep", 2)


class OvisImageAdapter(_FluxLikeAdapter):
    """Ovis-Image (``OvisImageTransformer2DModel``): FLUX.1's blocks under other names.

    Double and single blocks take ``(hidden_states, encoder_hidden_states, temb,
    image_rotary_emb, joint_attention_kwargs)`` and return ``(encoder_hidden_states,
    hidden_states)`` (the single block joins ``[text; image]`` inside and splits it again); a
    skipped block passes both through. The head reads the image tokens alone: image tokens only
    are predicted. The probe is the first double block's ``norm1(x, emb=temb)``. Nothing runs
    between the blocks; the text embedder (RMSNorm + linear) before them runs every step, exactly.
    """

    name = "ovis-image"
    transformer_classes = ("OvisImageTransformer2DModel",)
    timestep_argument = ("timestep", 2)


class ChromaAdapter(GenericAdapter):
    """Chroma (``ChromaTransformer2DModel``): FLUX.1 with pruned, per-block modulation.

    Double blocks (``ChromaTransformerBlock``) take ``(hidden_states, encoder_hidden_states, temb,
    ...)`` and return ``(encoder_hidden_states, hidden_states)``, where ``temb`` stacks this block's
    six image then six text modulations, sliced per block from the approximator's output by the
    transformer (cheap, exact every step). The transformer then joins ``[text; image]``; single
    blocks take and return that one tensor, so a skipped block passes it through and the last
    one's output is cut after the text tokens. The head reads the image tokens alone: image
    tokens only are predicted. The probe is the first double block's ``norm1`` applied with its
    image modulation ``temb[:, :6]``. Calls passing ControlNet residuals (added between blocks, to
    the image part of the joined sequence in the single blocks) cache the sum of each block's own
    image residual, so predicted steps add them once, exactly.
    """

    name = "chroma"
    transformer_classes = ("ChromaTransformer2DModel",)
    timestep_argument = ("timestep", 2)
    shared_arguments = ("img_ids", "txt_ids")
    block_lists = FLUX_BLOCK_LISTS
    block_outputs = {"transformer_blocks": TEXT_IMAGE, "single_transformer_blocks": None}
    image_position = "end"
    adds_between_blocks = ("controlnet_block_samples", "controlnet_single_block_samples")

    def modulated_input(self, block, args, kwargs):
        temb = self.block_argument(args, kwargs, "temb", block)
        return block.norm1(self.block_argument(args, kwargs, "hidden_states", block), emb=temb[:, :6])[0]


class BriaFiboAdapter(GenericAdapter):
    """Bria FIBO (``BriaFiboTransformer2DModel``): FLUX.1 blocks fed a new text-encoder layer each.

    Before every block the transformer rebuilds the text stream from half its width and the next
    projected text-encoder layer (text only, exact every step). Double blocks return
    ``(encoder_hidden_states, hidden_states)``; before each single block the transformer joins
    ``[text; image]``, the block returns that one tensor and the transformer splits it again, so a
    skipped block passes the joined sequence through and the last one's output is cut after the
    text tokens. The head reads the image tokens alone: image tokens only are predicted. The probe
    is the first double block's ``norm1(x, emb=temb)``. The timestep is the scheduler's (0 to 1000).
    """

    name = "bria-fibo"
    transformer_classes = ("BriaFiboTransformer2DModel",)
    timestep_argument = ("timestep", 4)
    shared_arguments = ("img_ids", "txt_ids")
    block_lists = FLUX_BLOCK_LISTS
    block_outputs = {"transformer_blocks": TEXT_IMAGE, "single_transformer_blocks": None}
    image_position = "end"


class AuraFlowAdapter(GenericAdapter):
    """AuraFlow (``AuraFlowTransformer2DModel``): MMDiT blocks, then single DiT blocks on ``[text; image]``.

    Joint blocks take ``(hidden_states, encoder_hidden_states, temb, attention_kwargs)`` and return
    ``(encoder_hidden_states, hidden_states)`` (the text stream carries the register tokens in
    front). The transformer joins ``[text; image]``; single blocks take and return that one tensor,
    so a skipped block passes it through and the last one's output is cut after the text tokens.
    The head (``norm_out``, ``proj_out``, unpatchify) reads the image tokens alone: image tokens
    only are predicted. The probe is the first joint block's ``norm1(x, emb=temb)``. Nothing runs
    between the blocks. The timestep is the scheduler's divided by 1000.
    """

    name = "auraflow"
    transformer_classes = ("AuraFlowTransformer2DModel",)
    timestep_argument = ("timestep", 2)
    block_lists = ("joint_transformer_blocks", "single_transformer_blocks")
    block_outputs = {"joint_transformer_blocks": TEXT_IMAGE, "single_transformer_blocks": None}
    image_position = "end"


class HunyuanImageAdapter(GenericAdapter):
    """HunyuanImage 2.1 (``HunyuanImageTransformer2DModel``): dual-stream then single-stream blocks.

    Both block kinds are called positionally with ``(hidden_states, encoder_hidden_states, temb)``
    plus ``attention_mask`` and ``image_rotary_emb`` and return ``(hidden_states,
    encoder_hidden_states)`` (the single blocks join ``[image; text]`` inside and split it again),
    so a skipped block passes both through. The head reads the image tokens alone: image tokens
    only are predicted. The probe is the first dual block's ``norm1(x, emb=temb)``. The token
    refiner (``context_embedder``) and the ByT5 projection run on the text before the blocks,
    every step, exactly. The timestep is the scheduler's (0 to 1000).
    """

    name = "hunyuan-image"
    transformer_classes = ("HunyuanImageTransformer2DModel",)
    timestep_argument = ("timestep", 1)
    block_lists = FLUX_BLOCK_LISTS
    block_outputs = ("hidden_states", "encoder_hidden_states")


class HiDreamImageAdapter(GenericAdapter):
    """HiDream-I1 (``HiDreamImageTransformer2DModel``): dual-stream then single-stream MoE blocks.

    Both lists hold ``HiDreamBlock`` wrappers taking ``(hidden_states, hidden_states_masks,
    encoder_hidden_states, temb, image_rotary_emb)``. Before each dual block the transformer
    appends this block's Llama layer to the text stream ``[T5; Llama last]``; the block returns
    ``(hidden_states, encoder_hidden_states)`` and the transformer cuts the appended layer off
    again, so a skipped block passes both through. The transformer then joins ``[image; text]``;
    before each single block it appends that block's Llama layer, the block returns the one tensor
    and the transformer cuts it back, so a skipped block passes the joined sequence through and the
    last one's output is cut to its leading image tokens. The head (``final_layer``, unpatchify)
    reads the image tokens alone: image tokens only are predicted (padding tokens of a non-square
    image included; unpatchify drops them). The block has no AdaLN module: the probe is the first
    dual block's ``norm1_i(x)`` shifted and scaled by the first two chunks of its
    ``adaLN_modulation(temb)``. Nothing else runs between the blocks. The timestep is the
    scheduler's (0 to 1000).
    """

    name = "hidream-image"
    batch_dims = {"encoder_hidden_states_llama3": 1}  # [layers, B, T, D]
    transformer_classes = ("HiDreamImageTransformer2DModel",)
    timestep_argument = ("timesteps", 1)
    block_lists = ("double_stream_blocks", "single_stream_blocks")
    block_outputs = {"double_stream_blocks": ("hidden_states", "encoder_hidden_states"), "single_stream_blocks": None}
    image_position = "start"

    def modulated_input(self, block, args, kwargs):
        inner = block.block
        x = self.block_argument(args, kwargs, "hidden_states", block)
        modulation = inner.adaLN_modulation(self.block_argument(args, kwargs, "temb", block))[:, None]
        shift, scale = modulation.chunk(12 if modulation.shape[-1] == 12 * x.shape[-1] else 6, dim=-1)[:2]
        return inner.norm1_i(x).to(x.dtype) * (1 + scale) + shift


class Flux3Adapter(GenericAdapter):
    """FLUX.3 (``Flux3Transformer2DModel``): per-mode blocks, then joint single blocks.

    The text context first runs through its own mode blocks (``txt_mode_blocks``, text only, at
    timestep 0): they stay outside the stack and run every step, exactly. The stack is the image
    mode blocks (``mode_blocks.image``), the reference-image mode blocks (``mode_blocks.image_cond``,
    called only for image-to-image) and the single blocks. Mode blocks take ``(hidden_states,
    temb_mod, image_rotary_emb)`` and return their own tokens; the transformer then joins the
    content ``[image; reference images]``, and single blocks take ``(hidden_states=content,
    encoder_hidden_states=text, temb_mod, temb_mod_context, image_rotary_emb)`` and return
    ``(encoder_hidden_states, hidden_states)``. A skipped block passes its own inputs through; the
    last block's content is cut to its leading image tokens, which is all the head (``norm_out``,
    ``proj_out``) reads: image tokens only are predicted. The blocks have no AdaLN module: the
    probe is the first image mode block's ``norm(x)`` shifted and scaled by its per-token
    ``temb_mod``. The modulations are computed once per step before the blocks, exactly.
    """

    name = "flux3"
    transformer_classes = ("Flux3Transformer2DModel",)
    timestep_argument = ("timestep", 2)
    shared_arguments = ("img_ids", "txt_ids", "image_cond_ids")
    block_lists = ("mode_blocks.image", "mode_blocks.image_cond", "single_transformer_blocks")
    block_outputs = {"mode_blocks.image": None, "mode_blocks.image_cond": None, "single_transformer_blocks": TEXT_IMAGE}
    image_position = "start"
    conditioning = "temb_mod"

    def modulated_input(self, block, args, kwargs):
        x = self.block_argument(args, kwargs, "hidden_states", block)
        shift, scale, _ = torch.chunk(self.block_argument(args, kwargs, "temb_mod", block), 3, dim=-1)
        return (1 + scale) * block.norm(x) + shift


ADAPTERS = (
    BriaAdapter, BriaFiboAdapter, ChromaAdapter, LongCatImageAdapter, OvisImageAdapter, AuraFlowAdapter,
    HunyuanImageAdapter, HiDreamImageAdapter, Flux3Adapter,
)
