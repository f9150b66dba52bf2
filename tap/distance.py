"""The distance interface: the proxy loss between each candidate's predicted h and the probed h."""

from __future__ import annotations

import abc
from typing import ClassVar

import attrs
import torch


@attrs.frozen
class GramStats:
    """Inner products that determine every linear candidate's proxy loss without materialising it.

    With cached probe features h_j (j over the H cached full steps) and the probed h:
    ``cross[j] = <h_j, h>`` [H, B, N], ``gram[j, l] = <h_j, h_l>`` [H, H, B, N], ``sq = <h, h>`` [B, N].
    A candidate with weights w predicts sum_j w_j h_j, so its distance to h is a function of
    w, cross, gram and sq alone.
    """

    cross: torch.Tensor
    gram: torch.Tensor
    sq: torch.Tensor

    @staticmethod
    def gram_of(cached: torch.Tensor) -> torch.Tensor:
        """``gram`` for cached features [H, B, N, D]; it changes only at full steps."""
        return torch.einsum("hbnd,lbnd->hlbn", cached, cached)

    @classmethod
    def of(cls, cached: torch.Tensor, gram: torch.Tensor, probe: torch.Tensor) -> GramStats:
        # Elementwise products and sums: several times faster than einsum for these shapes on CPU.
        return cls(cross=(cached * probe).sum(-1), gram=gram, sq=probe.square().sum(-1))

    @staticmethod
    def combine(weights: torch.Tensor, per_entry: torch.Tensor) -> torch.Tensor:
        """sum_j weights[c, j] * per_entry[j] for weights [C, J] and per_entry [J, B, N] -> [C, B, N]."""
        return (weights @ per_entry.reshape(per_entry.shape[0], -1)).reshape(weights.shape[0], *per_entry.shape[1:])

    def dot(self, weights: torch.Tensor) -> torch.Tensor:
        """<prediction_c, h> for weights [C, H] -> [C, B, N]."""
        return self.combine(weights, self.cross)

    def norm_sq(self, weights: torch.Tensor) -> torch.Tensor:
        """||prediction_c||^2 for weights [C, H] -> [C, B, N]."""
        pairs = (weights[:, :, None] * weights[:, None, :]).flatten(1)  # [C, H*H]
        return self.combine(pairs, self.gram.flatten(0, 1))


class Distance(abc.ABC):
    """Proxy loss d(predicted h, probed h) per candidate and token; smaller is better."""

    name: ClassVar[str] = ""

    @abc.abstractmethod
    def __call__(self, predicted: torch.Tensor, probe: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """Losses [C, B, N] from predictions [C, B, N, D], the probe [B, N, D] and the last cached h."""

    def from_gram(self, weights: torch.Tensor, stats: GramStats) -> torch.Tensor | None:
        """The same losses for linear candidates with ``weights`` [C, H], or None if not supported.

        Returning None makes the runtime materialise every prediction and call ``__call__``.
        """
        return None
