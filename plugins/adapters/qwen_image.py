"""Qwen-Image (diffusers ``QwenImageTransformer2DModel``): one list of dual-stream blocks.

Each ``QwenImageTransformerBlock`` takes ``(hidden_states, encoder_hidden_states,
encoder_hidden_states_mask, temb, image_rotary_emb, joint_attention_kwargs, modulate_index)`` and
returns ``(encoder_hidden_states, hidden_states)``; the head reads the image tokens alone. The
block has no AdaLN module: the probe is its own image-stream modulation, ``img_norm1`` then
``_modulate`` with the first half of ``img_mod(temb)`` (and ``modulate_index`` for the edit
models' zero-timestep condition tokens, which stay part of the predicted image tokens).
ControlNet residuals, added between blocks, stay exact: calls given them cache the sum of block
residuals.
"""

from tap._compat import block_modulate
from tap_plugins.adapters.generic import GenericAdapter


class QwenImageAdapter(GenericAdapter):
    """Probe on the first block's modulated image stream; residual over the image tokens."""

    name = "qwen-image"
    transformer_classes = ("QwenImageTransformer2DModel",)
    timestep_argument = ("timestep", 3)
    adds_between_blocks = ("controlnet_block_samples",)  # ControlNet residuals: summed block residuals keep them exact
    block_lists = ("transformer_blocks",)
    block_arguments = (
        "hidden_states", "encoder_hidden_states", "encoder_hidden_states_mask", "temb", "image_rotary_emb",
        "joint_attention_kwargs", "modulate_index",
    )
    block_outputs = ("encoder_hidden_states", "hidden_states")

    def modulated_input(self, block, args, kwargs):
        attention_modulation = block.img_mod(self.block_argument(args, kwargs, "temb")).chunk(2, dim=-1)[0]
        normed = block.img_norm1(self.stack_input(args, kwargs))
        return block_modulate(block, normed, attention_modulation, self.block_argument(args, kwargs, "modulate_index"))[0]
