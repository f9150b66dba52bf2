"""Built-in selectors: per-token argmin (TAP), one global choice per sample, and a fixed candidate."""

import attrs
import torch

from tap import ConfigError, Selector, hookimpl


class TokenArgmin(Selector):
    """Each token takes the candidate with the smallest proxy loss (the paper's rule)."""

    name = "token"

    def select(self, losses, labels, shape):
        return losses.argmin(dim=0)


class GlobalArgmin(Selector):
    """Each sample takes the one candidate with the smallest mean loss over its tokens."""

    name = "global"

    def select(self, losses, labels, shape):
        best = losses.mean(dim=-1).argmin(dim=0)  # [B]
        return best[:, None].expand(shape)


@attrs.frozen
class Fixed(Selector):
    """Every token takes candidate ``candidate`` of the family (FORA, TaylorSeer baselines); no probe runs.

    Early in a generation, before that candidate is usable, the last usable one is taken.
    """

    name = "fixed"
    needs_losses = False
    candidate: int = attrs.field(default=0, validator=attrs.validators.ge(0))

    def select(self, losses, labels, shape):
        if not labels:
            raise ConfigError("fixed selector: no candidate is active")
        index = min(self.candidate, len(labels) - 1)
        return torch.full(shape, index, dtype=torch.long)


@hookimpl
def register_selectors(register):
    for cls in (TokenArgmin, GlobalArgmin, Fixed):
        register(cls)
