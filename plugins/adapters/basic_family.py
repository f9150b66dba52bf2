"""Single-stream DiTs whose blocks return the image tokens alone (text enters by cross-attention only).

DiT, PixArt-α/Σ and Latte use diffusers' ``BasicTransformerBlock``; Allegro, Sana, Sana-Video, SANA-WM,
the SANA-WM LTX-2 refiner, LTX-Video and Cosmos have their own blocks of the same shape: each takes the
image tokens plus conditioning and returns the updated image tokens, so a skipped block returns its
``hidden_states`` (``x`` for SANA-WM) argument. The heads read the image tokens after the stack and
recompute their own modulation from the timestep embedding, so only the image tokens are predicted.
The probe is the first block's first AdaLN-modulated norm: ``norm1(x)`` scaled and shifted by the
block's ``scale_shift_table`` plus the timestep embedding (adaLN-single), or its ``norm1`` module
where that is an AdaLN module (DiT's AdaLayerNormZero, Cosmos).
"""

import torch

from tap.adapter import argument
from tap_plugins.adapters.generic import GenericAdapter


def table_modulated(norm: torch.nn.Module, table: torch.Tensor, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
    """``norm(x) * (1 + scale) + shift``, (shift, scale) the first two rows of ``table`` plus ``temb``.

    ``temb`` is [B, n * D] (one modulation per sample) or [B, T, n * D] (one per token, T = N or 1), n the
    table's rows: the adaLN-single layout of PixArt, Allegro, Sana, Sana-Video, LTX-Video and LTX-2.
    """
    values = table[None, None].to(temb.device) + temb.reshape(x.shape[0], -1, table.shape[0], table.shape[-1])
    shift, scale = values[:, :, 0], values[:, :, 1]
    return (norm(x) * (1 + scale) + shift).to(x.dtype)


class PerTokenTimestep(GenericAdapter):
    """The generation key reads the largest timestep: image-to-video pipelines pin the conditioning frames' to 0."""

    def generation_key(self, args, kwargs):
        timestep = argument(args, kwargs, *self.timestep_argument)
        _, shape = super().generation_key(args, kwargs)
        return (float(timestep.max()) if isinstance(timestep, torch.Tensor) else timestep), shape


class AdaLNSingleAdapter(PerTokenTimestep):
    """Blocks modulated by their own ``scale_shift_table`` plus the adaLN-single embedding (``conditioning``)."""

    def modulated_input(self, block, args, kwargs):
        x = self.block_argument(args, kwargs, self.image_tokens, block)
        temb = self.block_argument(args, kwargs, self.conditioning, block)
        return table_modulated(block.norm1, block.scale_shift_table, x, temb)


class BasicBlockAdapter(PerTokenTimestep):
    """diffusers' ``BasicTransformerBlock``: the probe follows the block's ``norm_type``."""

    conditioning = "timestep"

    def modulated_input(self, block, args, kwargs):
        x = self.block_argument(args, kwargs, "hidden_states", block)
        timestep = self.block_argument(args, kwargs, "timestep", block)
        kind = block.norm_type
        if kind == "ada_norm_single":
            return table_modulated(block.norm1, block.scale_shift_table, x, timestep)
        if kind == "ada_norm_zero":
            labels = self.block_argument(args, kwargs, "class_labels", block)
            return block.norm1(x, timestep, labels, hidden_dtype=x.dtype)[0]
        if kind == "ada_norm":
            return block.norm1(x, timestep)
        if kind == "ada_norm_continuous":
            return block.norm1(x, self.block_argument(args, kwargs, "added_cond_kwargs", block)["pooled_text_emb"])
        return block.norm1(x)  # layer_norm, layer_norm_i2vgen: no modulation to read


class DiTAdapter(BasicBlockAdapter):
    """DiT (diffusers ``DiTTransformer2DModel``): one list of ``BasicTransformerBlock`` s with AdaLayerNormZero.

    Class-conditional; every block is called with keywords and returns the image tokens. The head
    recomputes its conditioning from ``transformer_blocks[0].norm1.emb`` (a module, not a block output),
    so it stays exact. The probe is the first block's ``norm1(x, timestep, class_labels)``.
    """

    name = "dit"
    transformer_classes = ("DiTTransformer2DModel",)
    timestep_argument = ("timestep", 1)
    block_lists = ("transformer_blocks",)


class PixArtAdapter(BasicBlockAdapter):
    """PixArt-α / PixArt-Σ (diffusers ``PixArtTransformer2DModel``): ``BasicTransformerBlock`` s with adaLN-single.

    The blocks cross-attend to the projected caption and return the image tokens; the head modulates
    them with its own ``scale_shift_table`` and the embedded timestep (computed before the stack). The
    probe is ``norm1(x)`` modulated by the block's ``scale_shift_table`` plus the adaLN-single embedding.
    """

    name = "pixart"
    transformer_classes = ("PixArtTransformer2DModel",)
    timestep_argument = ("timestep", 2)
    block_lists = ("transformer_blocks",)


class LatteAdapter(BasicBlockAdapter):
    """Latte (diffusers ``LatteTransformer3DModel``): spatial and temporal ``BasicTransformerBlock`` s in turn.

    The forward calls ``transformer_blocks[i]`` on frames [B*F, N, D] and then
    ``temporal_transformer_blocks[i]`` on token tracks [B*N, F, D], reshaping between them; the stack is
    the interleaved list s0, t0, s1, t1, ..., so x is the first spatial block's input [B*F, N, D] and
    f(x) the last temporal block's output put back in that layout (the same permutation the forward
    applies after it). Between s0 and t0 the forward adds ``temp_pos_embed`` (when F > 1): on a
    predicted step the first block returns ``x + r_hat - temp_pos_embed`` (in the frame layout), so that
    the forward's own addition restores ``x + r_hat`` exactly instead of counting it twice. Every later
    block returns its input. Calls with ``enable_temporal_attentions=False`` run in full (the temporal
    blocks, the end of the stack, do not run). The head reads the image tokens alone. The probe is the
    first spatial block's modulated ``norm1``.
    """

    name = "latte"
    transformer_classes = ("LatteTransformer3DModel",)
    timestep_argument = ("timestep", 1)
    block_lists = ("transformer_blocks", "temporal_transformer_blocks")

    def __init__(self) -> None:
        super().__init__()
        self.transformer: torch.nn.Module | None = None
        self.frames = 1  # F of the current call
        self.tokens = 0  # N (tokens per frame) of the current call

    def blocks(self, transformer):
        found = super().blocks(transformer)
        self.transformer = transformer
        spatial, temporal = found[: len(found) // 2], found[len(found) // 2 :]
        return [block for pair in zip(spatial, temporal) for block in pair]

    def full_compute_reason(self, args, kwargs):
        latents = argument(args, kwargs, "hidden_states", 0)
        self.frames = latents.shape[2] if isinstance(latents, torch.Tensor) and latents.ndim == 5 else 1
        if argument(args, kwargs, "enable_temporal_attentions", 4) is False:
            return "LatteAdapter cannot predict a step given enable_temporal_attentions=False"
        return None

    def stack_input(self, args, kwargs):
        x = super().stack_input(args, kwargs)
        self.tokens = x.shape[1]
        return x

    def stack_output(self, output):
        """A temporal block's output [B*N, F, D] in the frame layout [B*F, N, D]."""
        tokens, frames = self.tokens, output.shape[1]
        if output.shape[1] == tokens and tokens != frames:  # already in the frame layout
            return output
        batch = output.shape[0] // tokens
        return output.reshape(batch, tokens, frames, output.shape[-1]).permute(0, 2, 1, 3).reshape(-1, tokens, output.shape[-1])

    def probe_output(self, output):
        return output  # the first (spatial) block's output is already in the frame layout

    def skip_output(self, args, kwargs, hidden_states):
        if self.frames > 1:
            embed = self.transformer.temp_pos_embed.to(hidden_states.dtype)[0, : self.frames]  # [F, D]
            batch = hidden_states.shape[0] // self.frames
            hidden_states = hidden_states - embed[:, None].repeat(batch, 1, 1)  # [B*F, 1, D]
        return super().skip_output(args, kwargs, hidden_states)


class AllegroAdapter(AdaLNSingleAdapter):
    """Allegro (diffusers ``AllegroTransformer3DModel``): one list of adaLN-single blocks over all video tokens.

    ``AllegroTransformerBlock`` takes ``(hidden_states, encoder_hidden_states, temb, ...)`` by keyword
    and returns the video tokens; the head reads them alone. The probe is ``norm1(x)`` modulated by the
    block's ``scale_shift_table`` plus ``temb``.
    """

    name = "allegro"
    transformer_classes = ("AllegroTransformer3DModel",)
    timestep_argument = ("timestep", 2)
    block_lists = ("transformer_blocks",)
    conditioning = "temb"


class SanaAdapter(AdaLNSingleAdapter):
    """Sana (diffusers ``SanaTransformer2DModel``): one list of linear-attention blocks with adaLN-single.

    Blocks are called positionally with ``(hidden_states, attention_mask, encoder_hidden_states,
    encoder_attention_mask, timestep, height, width)`` and return the image tokens; the head
    (``norm_out`` with the embedded timestep) reads them alone. ``controlnet_block_samples`` are added
    to the hidden states between blocks, so calls passing them cache the sum of each block's own
    residual and predicted steps add them once, exactly. The probe is ``norm1(x)``
    modulated by the block's ``scale_shift_table`` plus the adaLN-single embedding.
    """

    name = "sana"
    transformer_classes = ("SanaTransformer2DModel",)
    timestep_argument = ("timestep", 2)
    block_lists = ("transformer_blocks",)
    conditioning = "timestep"
    adds_between_blocks = ("controlnet_block_samples",)


class SanaVideoAdapter(SanaAdapter):
    """Sana-Video (diffusers ``SanaVideoTransformer3DModel``): Sana's blocks over all video tokens.

    As :class:`SanaAdapter`; the blocks also take ``frames`` and ``rotary_emb``, and the adaLN-single
    embedding may be per token ([B, N, 6D]). ``controlnet_block_samples`` run in full.
    """

    name = "sana-video"
    transformer_classes = ("SanaVideoTransformer3DModel",)


class SanaWMAdapter(PerTokenTimestep):
    """SANA-WM stage 1 (diffusers ``SanaWMTransformer3DModel``): one list of camera-controlled blocks.

    ``SanaVideoMSCamCtrlBlock`` is called positionally with ``(x, y, t, mask, THW, rotary_emb, ...)``
    and returns the video tokens ``x``; the head (``final_layer``) reads them with the timestep
    embedding. The camera embedding, Plücker embedding and UCPE ray transforms are computed before the
    stack and passed to every block, so they stay exact. The probe is ``norm1(x)`` modulated per frame
    by the block's ``scale_shift_table`` plus ``t`` ([B, 1, T, 6D]). With ``frame_valid_mask`` a full
    step zeroes invalid frames inside every block; a predicted step forecasts them like other tokens.
    The timestep is per frame with the conditioning frame pinned to 0: the generation key reads the
    largest.
    """

    name = "sana-wm"
    transformer_classes = ("SanaWMTransformer3DModel",)
    timestep_argument = ("timestep", 1)
    block_lists = ("blocks",)
    image_tokens = "x"
    conditioning = "t"

    def modulated_input(self, block, args, kwargs):
        x = self.block_argument(args, kwargs, "x", block)
        t = self.block_argument(args, kwargs, "t", block)
        batch, tokens, width = x.shape
        frames = t.shape[2]
        values = block.scale_shift_table[None, None] + t.reshape(batch, frames, 6, -1)  # [B, T, 6, D]
        shift, scale = values[:, :, 0:1], values[:, :, 1:2]
        normed = block.norm1(x).reshape(batch, frames, -1, width)
        return (normed * (1 + scale) + shift).reshape(batch, tokens, width).to(x.dtype)


class SanaWMRefinerAdapter(AdaLNSingleAdapter):
    """SANA-WM stage-2 refiner (diffusers ``SanaWMLTX2RefinerTransformer3DModel``): LTX-2 blocks, video only.

    ``SanaWMLTX2RefinerTransformerBlock`` takes ``(hidden_states, encoder_hidden_states, temb,
    video_rotary_emb, ..., kv_cache, kv_cache_mode)`` by keyword and returns the video tokens; the head
    reads them alone. Denoising calls use ``kv_cache_mode="inject"`` (the blocks only read the sliding
    KV cache), which predicted steps may skip. The capture modes write this call's K/V into the cache
    from inside every block, so calls with ``kv_cache_mode`` other than None or ``"inject"`` run in
    full. The probe is ``norm1(x)`` modulated by the block's ``scale_shift_table`` plus ``temb``.
    """

    name = "sana-wm-refiner"
    transformer_classes = ("SanaWMLTX2RefinerTransformer3DModel",)
    timestep_argument = ("timestep", 2)
    block_lists = ("transformer_blocks",)
    conditioning = "temb"

    def full_compute_reason(self, args, kwargs):
        mode = argument(args, kwargs, "kv_cache_mode", 6)
        if mode not in (None, "inject"):
            return f"{type(self).__name__} cannot predict a step given kv_cache_mode={mode!r}"
        return None


class LTXVideoAdapter(AdaLNSingleAdapter):
    """LTX-Video (diffusers ``LTXVideoTransformer3DModel``): one list of adaLN-single blocks over video tokens.

    ``LTXVideoTransformerBlock`` takes ``(hidden_states, encoder_hidden_states, temb,
    image_rotary_emb, encoder_attention_mask)`` by keyword and returns the video tokens; the head reads
    them alone. ``temb`` is [B, 1, 6D], or per token ([B, N, 6D]) in image-to-video, whose conditioning
    tokens have timestep 0 (the generation key reads the largest). The probe is ``norm1(x)`` modulated
    by the block's ``scale_shift_table`` plus ``temb``.
    """

    name = "ltx-video"
    transformer_classes = ("LTXVideoTransformer3DModel",)
    timestep_argument = ("timestep", 2)
    block_lists = ("transformer_blocks",)
    conditioning = "temb"


class CosmosAdapter(PerTokenTimestep):
    """Cosmos Predict 1 / 2 / 2.5 (diffusers ``CosmosTransformer3DModel``): one list of AdaLN-Zero blocks.

    ``CosmosTransformerBlock`` is called positionally with ``(hidden_states, encoder_hidden_states,
    embedded_timestep, temb, image_rotary_emb, extra_pos_emb, attention_mask, controlnet_residual)``
    and, in this model (no ``after_proj``: that is the ControlNet's copy of the block), returns the video
    tokens alone. Each block adds ``extra_pos_emb`` to its input and, with Cosmos Transfer's
    ``block_controlnet_hidden_states``, a ControlNet residual to its output, both inside the block: a
    skipped block adds neither and the forecast residual carries them, so nothing is counted twice and
    ControlNet calls are predicted too (the ControlNet itself still runs every step, outside tap).
    The head (``norm_out`` with the embedded timestep) reads the video tokens alone. The probe is
    ``norm1(x + extra_pos_emb, embedded_timestep, temb)``.
    """

    name = "cosmos"
    transformer_classes = ("CosmosTransformer3DModel",)
    timestep_argument = ("timestep", 1)
    block_lists = ("transformer_blocks",)
    conditioning = "embedded_timestep"

    def modulated_input(self, block, args, kwargs):
        x = self.block_argument(args, kwargs, "hidden_states", block)
        extra = self.block_argument(args, kwargs, "extra_pos_emb", block)
        if extra is not None:
            x = x + extra
        embedded = self.block_argument(args, kwargs, "embedded_timestep", block)
        temb = self.block_argument(args, kwargs, "temb", block)
        return block.norm1(x, embedded, temb)[0]


ADAPTERS = (
    DiTAdapter, PixArtAdapter, LatteAdapter, AllegroAdapter, SanaAdapter, SanaVideoAdapter, SanaWMAdapter,
    SanaWMRefinerAdapter, LTXVideoAdapter, CosmosAdapter,
)
