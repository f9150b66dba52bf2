"""The probe interface: a cheap, exact feature computed at every step to judge the predictors."""

from __future__ import annotations

import abc
from typing import Any, Callable, ClassVar

import attrs
import torch


@attrs.frozen
class BlockCall:
    """One pending call of the first block: the block, a function running it, and its arguments."""

    block: torch.nn.Module
    run: Callable[..., Any]
    args: tuple
    kwargs: dict

    def __call__(self):
        return self.run(*self.args, **self.kwargs)


@attrs.frozen
class ProbeResult:
    """The probe feature h [B, N, D] per image token, and the first block's output if the probe ran it."""

    h: torch.Tensor
    block_output: Any = None


class Probe(abc.ABC):
    """Computes h_t, the feature whose prediction error scores each candidate predictor.

    ``runs_first_block`` tells the runtime that the probe evaluates the whole first block, so a
    full step reuses that output instead of running the block twice.
    """

    name: ClassVar[str] = ""
    runs_first_block: ClassVar[bool] = False

    @abc.abstractmethod
    def __call__(self, adapter, call: BlockCall) -> ProbeResult:
        """Probe the step whose first block is about to be called as ``call``."""
