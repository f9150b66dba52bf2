"""The adapter interface: how one transformer class splits into embed, block stack and head.

Adapters are the only place that knows a model's module names. The runtime hooks the blocks an
adapter returns: the first one is where the stack input x and the probe are read, the last one
is where f(x) is read; the head after the stack runs untouched.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import torch

DOCS_PAGE = "docs/adapters.md#the-generic-adapter"


def argument(args: tuple, kwargs: dict, name: str, position: int) -> Any:
    """A call argument given either by keyword ``name`` or at ``position``; None when absent."""
    if name in kwargs:
        return kwargs[name]
    return args[position] if len(args) > position else None


class Adapter(abc.ABC):
    """Splits one family of diffusers transformers for the runtime.

    ``transformer_classes`` names the classes it handles (matched against the model's class and
    its bases), ``timestep_argument`` and ``hidden_states_argument`` are (keyword, position)
    pairs locating the step's timestep and latent input in the transformer's forward call;
    ``shared_arguments`` names the forward's keyword arguments that hold no batch dimension even
    where their first size may equal the batch (position ids, say).
    """

    name: ClassVar[str] = ""
    transformer_classes: ClassVar[tuple[str, ...]] = ()
    timestep_argument: ClassVar[tuple[str, int]] = ("timestep", 2)
    hidden_states_argument: ClassVar[tuple[str, int]] = ("hidden_states", 0)
    shared_arguments: ClassVar[tuple[str, ...]] = ()  # keyword arguments common to every sample of a batch
    batch_dims: ClassVar[dict[str, int]] = {}  # keyword arguments whose batch dimension is not the first
    per_sample_calls: ClassVar[bool] = True  # False where a call's rows are coupled (a shared KV cache, inputs keyed by row)
    residual_per_block: ClassVar[bool] = False  # see block_image
    adds_between_blocks: ClassVar[tuple[str, ...]] = ()  # forward inputs that, given, turn residual_per_block on for a call

    def supports(self, transformer: torch.nn.Module) -> bool:
        return any(cls.__name__ in self.transformer_classes for cls in type(transformer).__mro__)

    def generation_key(self, args: tuple, kwargs: dict) -> tuple[float | None, tuple]:
        """(first timestep, latent shape) of a transformer call; the runtime reads the timestep only when no
        step index is known (a timestep that rises then starts a new generation) or to place the call among
        the scheduler's timesteps."""
        timestep = argument(args, kwargs, *self.timestep_argument)
        latents = argument(args, kwargs, *self.hidden_states_argument)
        t = float(timestep.flatten()[0]) if isinstance(timestep, torch.Tensor) else timestep
        return t, tuple(latents.shape) if isinstance(latents, torch.Tensor) else ()

    @abc.abstractmethod
    def blocks(self, transformer: torch.nn.Module) -> list[torch.nn.Module]:
        """The block stack in execution order; its residual over the image tokens is predicted."""

    @abc.abstractmethod
    def stack_input(self, args: tuple, kwargs: dict) -> torch.Tensor:
        """The image-token hidden states x [B, N, D] in a call of the first block."""

    @abc.abstractmethod
    def stack_output(self, output: Any) -> torch.Tensor:
        """The image-token hidden states [B, N, D] in the output of a block."""

    @abc.abstractmethod
    def skip_output(self, args: tuple, kwargs: dict, hidden_states: torch.Tensor) -> Any:
        """What a skipped block returns: its inputs passed through, image tokens set to ``hidden_states``."""

    @abc.abstractmethod
    def modulated_input(self, block: torch.nn.Module, args: tuple, kwargs: dict) -> torch.Tensor:
        """The block's AdaLN-modulated, normalised image input [B, N, D] (the paper's probe)."""

    def block_image(self, block: torch.nn.Module, args: tuple, kwargs: dict) -> torch.Tensor:
        """The image tokens a block is called with.

        With ``residual_per_block`` the cached residual is the sum of each block's own residual
        (output minus input, on a full step) rather than the last output minus the first input, so
        whatever the transformer adds between blocks (ControlNet residuals, VACE hints) is left out
        of the forecast and added exactly on predicted steps as well.
        """
        return self.stack_input(args, kwargs)

    def block_output_image(self, block: torch.nn.Module, output: Any) -> torch.Tensor:
        """The image tokens in a block's output (see :meth:`block_image`)."""
        return self.stack_output(output)

    def sums_block_residuals(self, args: tuple, kwargs: dict) -> bool:
        """Whether this transformer call caches the sum of block residuals (see :meth:`block_image`)."""
        return self.residual_per_block or any(kwargs.get(name) is not None for name in self.adds_between_blocks)

    def full_compute_reason(self, args: tuple, kwargs: dict) -> str | None:
        """Why this transformer call must run every block (an input tap cannot predict exactly), or None."""
        return None

    def skip_block(self, block: torch.nn.Module, args: tuple, kwargs: dict) -> Any:
        """What a block after the first returns on a predicted step: its own inputs passed through."""
        return self.skip_output(args, kwargs, self.stack_input(args, kwargs))

    def probe_output(self, output: Any) -> torch.Tensor:
        """The first block's output in :meth:`stack_input`'s layout (read by the first-block probe)."""
        return self.stack_output(output)
