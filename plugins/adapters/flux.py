"""FLUX.1 (diffusers ``FluxTransformer2DModel``): double blocks then single blocks, image tokens only.

Both block kinds take ``(hidden_states, encoder_hidden_states, temb, ...)`` and return
``(encoder_hidden_states, hidden_states)``; the head (``norm_out`` + ``proj_out``) reads the image
tokens alone, so the text stream need not be predicted. ControlNet residuals, added between blocks,
stay exact: calls given them cache the sum of block residuals.
"""

from tap import Adapter
from tap.adapter import argument


class FluxAdapter(Adapter):
    """Probe on the first double block; residual over the image tokens through every block."""

    name = "flux"
    transformer_classes = ("FluxTransformer2DModel",)
    timestep_argument = ("timestep", 3)
    adds_between_blocks = ("controlnet_block_samples", "controlnet_single_block_samples")  # ControlNet residuals: summed block residuals keep them exact
    shared_arguments = ("img_ids", "txt_ids")

    def blocks(self, transformer):
        return [*transformer.transformer_blocks, *transformer.single_transformer_blocks]

    def stack_input(self, args, kwargs):
        return argument(args, kwargs, "hidden_states", 0)

    def stack_output(self, output):
        return output[1]

    def skip_output(self, args, kwargs, hidden_states):
        return argument(args, kwargs, "encoder_hidden_states", 1), hidden_states

    def modulated_input(self, block, args, kwargs):
        temb = argument(args, kwargs, "temb", 2)
        return block.norm1(self.stack_input(args, kwargs), emb=temb)[0]
