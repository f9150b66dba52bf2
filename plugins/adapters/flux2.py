"""FLUX.2 (diffusers ``Flux2Transformer2DModel``): double-stream blocks, then single-stream blocks on
the joined ``[text, image]`` sequence.

Chosen as the fifth family because it is FLUX.1's successor (FLUX.2 [dev] and [klein]), the
paper's headline model line, and at 32B parameters the slowest image model in diffusers, where
skipping block stacks saves the most.

Double blocks take ``(hidden_states, encoder_hidden_states, temb_mod_img, temb_mod_txt, ...)`` and
return ``(encoder_hidden_states, hidden_states)``. The transformer then joins the streams; single
blocks get ``hidden_states=[text; image]`` with ``encoder_hidden_states=None`` and return that one
tensor. The residual covers the image tokens only (the head drops the text), so the last block's
output is cut after the text tokens, whose count this adapter reads from the first block's call
in the same transformer call (the runtime always reads the stack input before the output).
Blocks have no AdaLN module: the modulation is computed once per step, and the probe applies the
first block's attention shift and scale to its ``norm1(x)``. Out of scope: the reference-image
KV cache (its "extract" call has another shape, so tap starts counting at the next call).
"""

from tap import Adapter
from tap.adapter import argument


class Flux2Adapter(Adapter):
    """Probe on the first double block's modulated input; residual over the image tokens."""

    name = "flux2"
    transformer_classes = ("Flux2Transformer2DModel",)
    timestep_argument = ("timestep", 2)

    def __init__(self) -> None:
        self.text_tokens = 0

    def blocks(self, transformer):
        return [*transformer.transformer_blocks, *transformer.single_transformer_blocks]

    def stack_input(self, args, kwargs):
        text = argument(args, kwargs, "encoder_hidden_states", 1)
        if text is not None:  # a double block: where the image starts in the single blocks' sequence
            self.text_tokens = text.shape[1]
        return argument(args, kwargs, "hidden_states", 0)

    def stack_output(self, output):
        return output[1] if isinstance(output, tuple) else output[:, self.text_tokens :]

    def skip_output(self, args, kwargs, hidden_states):
        text = argument(args, kwargs, "encoder_hidden_states", 1)
        if text is not None:
            return text, hidden_states
        if argument(args, kwargs, "split_hidden_states", 5):
            split = argument(args, kwargs, "text_seq_len", 6)
            return hidden_states[:, :split], hidden_states[:, split:]
        return hidden_states

    def modulated_input(self, block, args, kwargs):
        from diffusers.models.transformers.transformer_flux2 import Flux2Modulation  # here: listing adapters needs no diffusers

        (shift, scale, _), _ = Flux2Modulation.split(argument(args, kwargs, "temb_mod_img", 2), 2)
        return (1 + scale) * block.norm1(self.stack_input(args, kwargs)) + shift
