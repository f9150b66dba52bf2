"""The selector interface: from proxy losses, which candidate each token uses."""

from __future__ import annotations

import abc
from typing import ClassVar

import torch


class Selector(abc.ABC):
    """Chooses a candidate per token from losses [C, B, N].

    A selector with ``needs_losses = False`` chooses without looking at the probe, and the
    runtime then skips the probe on predicted steps altogether. One with ``per_token = True``
    chooses each token from its own losses alone; any other is given every token of the sample,
    gathered across context-parallel ranks, so that all ranks choose as one process would.
    """

    name: ClassVar[str] = ""
    needs_losses: ClassVar[bool] = True
    per_token: ClassVar[bool] = False

    @abc.abstractmethod
    def select(self, losses: torch.Tensor | None, labels: list[str], shape: tuple[int, int]) -> torch.Tensor:
        """Indices [B, N] (long) into the active candidates, whose labels are ``labels``."""
