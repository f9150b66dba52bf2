"""Stable Diffusion 3 / 3.5 (diffusers ``SD3Transformer2DModel``): one list of joint (MMDiT) blocks.

Each ``JointTransformerBlock`` takes ``(hidden_states, encoder_hidden_states, temb,
joint_attention_kwargs)`` and returns ``(encoder_hidden_states, hidden_states)``; the head reads
the image tokens alone. The probe is the first block's ``norm1(x, emb=temb)`` (``AdaLayerNormZero``,
or ``SD35AdaLayerNormZeroX`` on SD3.5's dual-attention blocks: its first output either way).

The last block is ``context_pre_only`` and really returns ``None`` for the text stream; skipped,
it passes the text stream through instead (``skip_output`` is not told which block it stands
for), which the transformer discards unread. ControlNet residuals, added between blocks, stay exact:
calls given them cache the sum of block residuals. Out of scope: IP-Adapter, and
skip-layer guidance, whose extra transformer call per step tap would count as a step.
"""

from tap_plugins.adapters.generic import GenericAdapter


class SD3Adapter(GenericAdapter):
    """Probe on the first joint block; residual over the image tokens through every block."""

    name = "sd3"
    transformer_classes = ("SD3Transformer2DModel",)
    timestep_argument = ("timestep", 3)
    adds_between_blocks = ("block_controlnet_hidden_states",)  # ControlNet residuals: summed block residuals keep them exact
    block_lists = ("transformer_blocks",)
    block_arguments = ("hidden_states", "encoder_hidden_states", "temb", "joint_attention_kwargs")
    block_outputs = ("encoder_hidden_states", "hidden_states")
