"""Wan 2.1 / 2.2 (diffusers ``WanTransformer3DModel``): one list of self + cross-attention blocks.

Each ``WanTransformerBlock`` takes ``(hidden_states, encoder_hidden_states, temb, rotary_emb)``
and returns the video tokens alone (text enters through cross-attention only). The block has no
AdaLN module: the probe is its own first modulation, ``norm1(x)`` scaled and shifted by its
``scale_shift_table`` plus ``temb`` (per token for Wan 2.2 TI2V's 4-d ``temb``). Wan 2.2 A14B's
second expert ``transformer_2`` is hooked too when tap is enabled on the pipeline. Out of scope:
VACE, Animate and other Wan-derived classes (different blocks).
"""

import torch

from tap.adapter import argument
from tap_plugins.adapters.generic import GenericAdapter


class WanAdapter(GenericAdapter):
    """Probe on the first block's modulated input; residual over all video tokens."""

    name = "wan"
    transformer_classes = ("WanTransformer3DModel",)
    timestep_argument = ("timestep", 1)
    block_lists = ("blocks",)
    block_arguments = ("hidden_states", "encoder_hidden_states", "temb", "rotary_emb")

    def generation_key(self, args, kwargs):
        """Wan 2.2 TI2V passes per-token timesteps whose first-frame tokens stay at 0: use the largest."""
        timestep = argument(args, kwargs, *self.timestep_argument)
        _, shape = super().generation_key(args, kwargs)
        return (float(timestep.max()) if isinstance(timestep, torch.Tensor) else timestep), shape

    def modulated_input(self, block, args, kwargs):
        x = self.stack_input(args, kwargs)
        modulation = block.scale_shift_table + self.block_argument(args, kwargs, "temb").float()
        if modulation.ndim == 4:  # [B, N, 6, D]: one modulation per token
            shift, scale = modulation[:, :, :2].unbind(2)
        else:  # [B, 6, D]
            shift, scale = modulation[:, :2].chunk(2, dim=1)
        return (block.norm1(x.float()) * (1 + scale) + shift).type_as(x)
