"""Built-in predictors: reuse (FORA), taylor (divided differences), taylorseer, hermite (HiCache)."""

from __future__ import annotations

import math

import attrs
import torch

from tap import LinearPredictor, OrderedPredictor, hookimpl


@attrs.frozen
class Reuse(LinearPredictor):
    """Order 0: the last cached value, as FORA reuses features."""

    name = "reuse"

    @property
    def history(self) -> int:
        return 1

    @property
    def exact_degree(self) -> int:
        return 0

    def _weights(self, steps, target):
        return torch.ones(1, dtype=torch.float64)


@attrs.frozen
class Taylor(OrderedPredictor):
    """The degree-``order`` polynomial through the last ``order + 1`` full steps, at their real indices.

    This is a Taylor expansion whose derivatives are Newton divided differences; it reproduces
    every polynomial of degree <= order exactly for any spacing. The weights are that same
    polynomial written in Lagrange form: w_j = prod_{l != j} (target - s_l) / (s_j - s_l).
    """

    name = "taylor"

    @property
    def exact_degree(self) -> int:
        return self.order

    def _weights(self, steps, target):
        diff = steps[:, None] - steps[None, :]
        diff.fill_diagonal_(1.0)
        numer = target - steps
        weights = torch.empty_like(steps)
        for j in range(steps.numel()):
            others = torch.cat([numer[:j], numer[j + 1 :]])
            weights[j] = others.prod() / diff[j].prod()
        return weights


def finite_difference_derivatives(steps: torch.Tensor, order: int) -> torch.Tensor:
    """TaylorSeer's derivative estimates as weights: row i is the i-th derivative at the last step.

    TaylorSeer refreshes derivative i+1 at each full step as (d_i now - d_i at the previous full
    step) / gap, so d_i at step j depends on the steps j-i..j; we unroll that recursion into
    weights over the cached values (float64, [order + 1, order + 1]).
    """
    n = steps.numel()
    # derivs[i][j]: weights of derivative i evaluated at cached step j (valid for j >= i).
    derivs = [torch.eye(n, dtype=torch.float64)]
    for i in range(order):
        prev = derivs[-1]
        nxt = torch.zeros_like(prev)
        for j in range(i + 1, n):
            nxt[j] = (prev[j] - prev[j - 1]) / (steps[j] - steps[j - 1])
        derivs.append(nxt)
    return torch.stack([d[n - 1] for d in derivs])


@attrs.frozen
class TaylorSeer(OrderedPredictor):
    """TaylorSeer's predictor (arXiv 2503.06923): finite-difference derivatives, Taylor series in the offset.

    Derivative i+1 is the difference of derivative i between the last two full steps divided by
    their gap; the forecast is sum_i d_i * k^i / i! with k the distance from the last full step.
    It is exact for polynomials of degree <= 1 only (the backward differences lag the true
    derivatives), which is why tap also offers ``taylor``.
    """

    name = "taylorseer"

    @property
    def exact_degree(self) -> int:
        return min(self.order, 1)

    def _weights(self, steps, target):
        offset = target - float(steps[-1])
        coefficients = torch.tensor(
            [offset**i / math.factorial(i) for i in range(self.order + 1)], dtype=torch.float64
        )
        return coefficients @ finite_difference_derivatives(steps, self.order)


def physicists_hermite(x: float, n: int) -> float:
    """H_n(x) by the recurrence H_{k+1} = 2x H_k - 2k H_{k-1}."""
    previous, current = 1.0, 2.0 * x
    if n == 0:
        return previous
    for k in range(1, n):
        previous, current = current, 2.0 * x * current - 2.0 * k * previous
    return current


@attrs.frozen
class Hermite(OrderedPredictor):
    """HiCache's scaled-Hermite forecast (Liu et al., arXiv 2508.16984).

    Same finite-difference derivatives as TaylorSeer, but term i uses the physicists' Hermite
    polynomial H_i(scale * k) * scale^i / i! in place of k^i / i!. ``scale`` (sigma in the paper,
    0.5 in its code) damps high-order terms; the forecast is exact for constants only.
    """

    name = "hermite"
    scale: float = attrs.field(default=0.5, converter=float, validator=attrs.validators.gt(0.0))

    @property
    def exact_degree(self) -> int:
        return 0

    def _weights(self, steps, target):
        offset = target - float(steps[-1])
        coefficients = torch.tensor(
            [1.0]
            + [
                physicists_hermite(self.scale * offset, i) * self.scale**i / math.factorial(i)
                for i in range(1, self.order + 1)
            ],
            dtype=torch.float64,
        )
        return coefficients @ finite_difference_derivatives(steps, self.order)


@hookimpl
def register_predictors(register):
    for cls in (Reuse, Taylor, TaylorSeer, Hermite):
        register(cls)
