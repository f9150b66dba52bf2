"""HunyuanVideo (diffusers ``HunyuanVideoTransformer3DModel``): dual-stream then single-stream blocks.

Both block kinds are called positionally with ``(hidden_states, encoder_hidden_states, temb,
attention_mask, image_rotary_emb, token_replace_emb, first_frame_num_tokens)`` and return
``(hidden_states, encoder_hidden_states)`` (the single blocks concatenate and split the streams
inside), so the video tokens are the first output; the head reads them alone. The probe is the
first dual block's ``norm1(x, emb=temb)``; the I2V ``token_replace`` variant's ``norm1`` also takes
the first frame's embedding and token count. Out of scope: the token refiner (runs every step,
before the blocks), HunyuanVideo 1.5 and FramePack (other classes).
"""

from tap_plugins.adapters.generic import GenericAdapter


class HunyuanVideoAdapter(GenericAdapter):
    """Probe on the first dual-stream block; residual over the video tokens through every block."""

    name = "hunyuan-video"
    transformer_classes = ("HunyuanVideoTransformer3DModel",)
    timestep_argument = ("timestep", 1)
    block_lists = ("transformer_blocks", "single_transformer_blocks")
    block_arguments = (
        "hidden_states", "encoder_hidden_states", "temb", "attention_mask", "image_rotary_emb",
        "token_replace_emb", "first_frame_num_tokens",
    )
    block_outputs = ("hidden_states", "encoder_hidden_states")

    def modulated_input(self, block, args, kwargs):
        token_replace = self.block_argument(args, kwargs, "token_replace_emb")
        if token_replace is None:
            return super().modulated_input(block, args, kwargs)
        first_frame = self.block_argument(args, kwargs, "first_frame_num_tokens")
        temb = self.block_argument(args, kwargs, "temb")
        return block.norm1(self.stack_input(args, kwargs), temb, token_replace, first_frame)[0]
