"""tap-lsq: the ``lsq`` predictor, a least-squares polynomial over the last few full steps.

Interpolating predictors (``taylor``) pass exactly through every cached value, so noise in the
cached features is amplified when they extrapolate. ``lsq`` fits a polynomial of degree
``degree`` to the last ``window`` full steps by least squares instead (``window > degree``),
averaging that noise out while still reproducing every polynomial of degree <= ``degree``.

This package is also the template for a third-party tap plugin: one entry point in the group
``tap`` (see pyproject.toml) pointing at a module with a ``@tap.hookimpl`` register hook.
"""

from __future__ import annotations

import attrs
import torch

import tap

__all__ = ["LeastSquares", "register_predictors"]


def _window_exceeds_degree(instance, attribute, value):
    if value <= instance.degree:
        raise tap.ConfigError(
            f"lsq: window={value} must be greater than degree={instance.degree} "
            f"(a degree-{instance.degree} fit needs at least {instance.degree + 1} cached steps)"
        )


@attrs.frozen
class LeastSquares(tap.LinearPredictor):
    """The degree-``degree`` least-squares polynomial through the last ``window`` full steps, at the target.

    Its weights are row ``phi(target)`` of the fit's hat matrix: ``phi(target) @ pinv(V)``, with
    ``V`` the Vandermonde matrix of the cached steps. The steps are centred and scaled to [-1, 1]
    before forming ``V``, which keeps it well conditioned, and everything runs in float64 on the
    actual step indices, so non-uniform full-step spacing is handled exactly.
    """

    name = "lsq"
    degree: int = attrs.field(default=1, validator=[attrs.validators.instance_of(int), attrs.validators.ge(0)])
    window: int = attrs.field(default=4, validator=[attrs.validators.instance_of(int), _window_exceeds_degree])

    @property
    def history(self) -> int:
        return self.window

    @property
    def exact_degree(self) -> int:
        return self.degree

    def degrade(self, available: int) -> LeastSquares | None:
        """Fit over the ``available`` steps instead, lowering the degree if they cannot support it."""
        if available < 1:
            return None
        window = min(self.window, available)
        return attrs.evolve(self, degree=min(self.degree, window - 1), window=window)

    def _weights(self, steps, target):
        centre = steps.mean()
        half_range = float(steps[-1] - steps[0]) / 2 or 1.0
        powers = torch.arange(self.degree + 1, dtype=torch.float64)
        vandermonde = ((steps - centre) / half_range)[:, None] ** powers
        at_target = ((target - centre) / half_range) ** powers
        identity = torch.eye(self.window, dtype=torch.float64)
        pseudo_inverse = torch.linalg.lstsq(vandermonde, identity).solution  # [degree + 1, window]
        return at_target @ pseudo_inverse


@tap.hookimpl
def register_predictors(register):
    register(LeastSquares)
