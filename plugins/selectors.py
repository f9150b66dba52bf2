"""Built-in selectors: per-token argmin (TAP), its spatially smoothed and margin-gated variants, one
global choice per sample, and a fixed candidate."""

import attrs
import torch
import torch.nn.functional as F

from tap import ConfigError, Selector, hookimpl


class TokenArgmin(Selector):
    """Each token takes the candidate with the smallest proxy loss (the paper's rule)."""

    name = "token"
    per_token = True

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
    per_token = True
    candidate: int = attrs.field(default=0, validator=attrs.validators.ge(0))

    def select(self, losses, labels, shape):
        if not labels:
            raise ConfigError("fixed selector: no candidate is active")
        index = min(self.candidate, len(labels) - 1)
        return torch.full(shape, index, dtype=torch.long)


def _odd_window(instance, attribute, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or value % 2 == 0:
        raise ConfigError(f"{instance.name} selector: {attribute.name} must be an odd int >= 1, got {value!r}")


def _width(instance, attribute, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{instance.name} selector: {attribute.name} must be an int >= 0 (0: a 1D token sequence), got {value!r}")


def _margin(instance, attribute, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ConfigError(f"{instance.name} selector: {attribute.name} must be a float >= 0, got {value!r}")


@attrs.frozen
class Smooth(Selector):
    """Each token takes the argmin of its candidates' losses box-filtered over neighbouring tokens, so
    that neighbours agree instead of flipping on per-token noise.

    ``window`` (odd) is the box size; ``width=0`` filters along the token sequence (1D), ``width>0``
    reads the N tokens as a row-major grid of rows of ``width`` tokens and filters a ``window`` x
    ``window`` square. At the borders only the tokens inside the sequence or grid are averaged.
    """

    name = "smooth"
    window: int = attrs.field(default=3, validator=_odd_window)
    width: int = attrs.field(default=0, validator=_width)

    def smoothed(self, losses: torch.Tensor) -> torch.Tensor:
        """``losses`` [C, B, N] averaged over each token's window, same shape."""
        c, b, n = losses.shape
        pad = self.window // 2
        if self.width == 0:
            flat = losses.reshape(c * b, 1, n)
            out = F.avg_pool1d(flat, self.window, stride=1, padding=pad, count_include_pad=False)
        else:
            if n % self.width:
                raise ValueError(f"smooth selector: N={n} tokens do not form rows of width={self.width} (N must be a multiple of width)")
            grid = losses.reshape(c * b, 1, n // self.width, self.width)
            out = F.avg_pool2d(grid, self.window, stride=1, padding=pad, count_include_pad=False)
        return out.reshape(c, b, n)

    def select(self, losses, labels, shape):
        return self.smoothed(losses).argmin(dim=0)


@attrs.frozen
class Margin(Selector):
    """Each token keeps candidate 0 of the active set (the family's first, e.g. order 1) unless another
    candidate's loss is below ``(1 - margin)`` times candidate 0's, then takes the argmin: choose per
    token only when the evidence margin is large, and otherwise stay with the safe default.
    """

    name = "margin"
    per_token = True
    margin: float = attrs.field(default=0.1, validator=_margin)

    def select(self, losses, labels, shape):
        best = losses.min(dim=0)
        switch = best.values < (1.0 - self.margin) * losses[0]
        return torch.where(switch, best.indices, torch.zeros_like(best.indices))


@hookimpl
def register_selectors(register):
    for cls in (TokenArgmin, Smooth, Margin, GlobalArgmin, Fixed):
        register(cls)
