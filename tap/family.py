"""Candidate families: predictors paired with a horizon, and their weights at one step."""

from __future__ import annotations

import attrs
import torch

from tap.errors import ConfigError
from tap.predictor import LinearPredictor, Predictor, describe

# A shift h is used only on steps more than -h steps after the last full step: -16 already needs
# gaps of 17 steps, far past where predicting pays (the paper's shifts are -4..0).
MIN_HORIZON = -16


def _predictor(instance, attribute, value):
    if not isinstance(value, Predictor):
        raise ConfigError(f"Candidate predictor must be a tap.Predictor instance (e.g. tap.get_predictor('taylor')), got {value!r}")


def _horizon(instance, attribute, value):
    if not isinstance(value, int) or isinstance(value, bool) or not MIN_HORIZON <= value <= 0:
        raise ConfigError(
            f"Candidate horizon must be an int in [{MIN_HORIZON}, 0] (a shift from the current step), got {value!r}"
        )


@attrs.frozen
class Candidate:
    """A predictor evaluated ``horizon`` steps from the current one (0: the step itself, -1: one before).

    The paper's horizons k-4..k are shifts -4..0; a shift that would land on or before the last
    full step is inactive at that step.
    """

    predictor: Predictor = attrs.field(validator=_predictor)
    horizon: int = attrs.field(default=0, validator=_horizon)

    @property
    def label(self) -> str:
        return describe(self.predictor) + (f"@{self.horizon:+d}" if self.horizon else "")


@attrs.frozen
class ActiveSet:
    """The candidates usable at one step: their indices in the family, labels and predictors."""

    indices: tuple[int, ...]
    labels: list[str]
    predictors: tuple[Predictor, ...]
    targets: tuple[int, ...]
    weights: torch.Tensor | None  # [C, H] float64 over the cached steps, None if some are not linear


def active_set(family: tuple[Candidate, ...], cached_steps: tuple[int, ...], step: int) -> ActiveSet:
    """Which candidates can predict ``step`` from ``cached_steps``, degrading orders that lack history."""
    available = len(cached_steps)
    last = cached_steps[-1]
    chosen = []
    for index, candidate in enumerate(family):
        target = step + candidate.horizon
        predictor = candidate.predictor
        if predictor.history > available:
            predictor = predictor.degrade(available)
        if predictor is None or target <= last:
            continue
        chosen.append((index, candidate, predictor, target))
    if not chosen:
        return ActiveSet((), [], (), (), None)
    weights = None
    if all(isinstance(p, LinearPredictor) for _, _, p, _ in chosen):
        steps = torch.tensor(cached_steps, dtype=torch.float64)
        weights = torch.zeros(len(chosen), available, dtype=torch.float64)
        for row, (_, _, predictor, target) in enumerate(chosen):
            weights[row, available - predictor.history :] = predictor.weights(steps, target)
    return ActiveSet(
        indices=tuple(i for i, _, _, _ in chosen),
        labels=[candidate.label for _, candidate, _, _ in chosen],
        predictors=tuple(p for _, _, p, _ in chosen),
        targets=tuple(t for _, _, _, t in chosen),
        weights=weights,
    )
