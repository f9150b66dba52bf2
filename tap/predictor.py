"""The predictor interface: extrapolate a cached feature from a few full steps to a target step."""

from __future__ import annotations

import abc
from typing import ClassVar

import attrs
import torch

from tap.errors import InsufficientHistoryError


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype predictors compute in: at least float32, so bf16/fp16 features keep their precision."""
    return torch.promote_types(dtype, torch.float32)


def describe(obj) -> str:
    """A short label such as ``taylor(order=2)`` built from a plugin's name and attrs fields."""
    fields = attrs.fields(type(obj)) if attrs.has(type(obj)) else ()
    params = ", ".join(f"{f.name}={getattr(obj, f.name)!r}" for f in fields)
    return f"{obj.name}({params})" if params else obj.name


class Predictor(abc.ABC):
    """Predicts a feature at step ``target`` from its values at earlier full steps.

    Subclasses are attrs frozen classes whose fields are their parameters (e.g. ``order``) and
    set the class attribute ``name`` under which they are registered.
    """

    name: ClassVar[str] = ""

    @property
    @abc.abstractmethod
    def history(self) -> int:
        """How many cached full steps the prediction uses (the most recent ones)."""

    @property
    @abc.abstractmethod
    def exact_degree(self) -> int:
        """The highest polynomial degree (in the step index) this predictor reproduces exactly."""

    @abc.abstractmethod
    def _predict(self, steps: torch.Tensor, values: torch.Tensor, target: float) -> torch.Tensor:
        """Predict from exactly ``history`` entries, ``values`` already in the compute dtype."""

    def degrade(self, available: int) -> Predictor | None:
        """A variant of this predictor that needs only ``available`` entries, or None if there is none.

        The runtime uses it early in a generation, before enough full steps are cached.
        """
        return None

    def predict(self, steps: torch.Tensor, values: torch.Tensor, target: float) -> torch.Tensor:
        """Predict the feature at ``target``.

        ``steps``: 1-D ascending step indices of the cached full steps; ``values``: [H, ...] the
        cached features; returns a tensor of shape ``values.shape[1:]`` in at least float32.
        """
        steps, values = self._validated(steps, values)
        return self._predict(steps, values.to(compute_dtype(values.dtype)), float(target))

    def _validated(self, steps: torch.Tensor, values: torch.Tensor):
        steps = torch.as_tensor(steps)
        if steps.ndim != 1:
            raise ValueError(f"{describe(self)}: steps must be 1-D, got shape {tuple(steps.shape)}")
        if values.shape[0] != steps.shape[0]:
            raise ValueError(
                f"{describe(self)}: values has {values.shape[0]} entries but steps has {steps.shape[0]}"
            )
        if steps.shape[0] < self.history:
            raise InsufficientHistoryError(
                f"{describe(self)} needs {self.history} cached full steps, got {steps.shape[0]}"
            )
        steps = steps[-self.history :].to(torch.float64)
        if steps.numel() > 1 and not bool((steps[1:] > steps[:-1]).all()):
            raise ValueError(f"{describe(self)}: steps must be strictly ascending, got {steps.tolist()}")
        return steps, values[-self.history :]

    def __str__(self) -> str:
        return describe(self)


class LinearPredictor(Predictor):
    """A predictor whose output is a fixed weighted sum of the cached values.

    Exposing the weights lets the runtime score every candidate from inner products alone and
    evaluate only each token's chosen candidate, as one weighted sum.
    """

    @abc.abstractmethod
    def _weights(self, steps: torch.Tensor, target: float) -> torch.Tensor:
        """Weights [history] (float64) over ``steps`` (float64, exactly ``history`` entries)."""

    def weights(self, steps: torch.Tensor, target: float) -> torch.Tensor:
        """Weights [history] over the last ``history`` of ``steps``, as float64."""
        steps, _ = self._validated(steps, torch.empty(len(steps)))
        return self._weights(steps, float(target))

    def _predict(self, steps, values, target):
        weights = self._weights(steps, target).to(values.dtype)
        return torch.tensordot(weights, values, dims=1)


@attrs.frozen
class OrderedPredictor(LinearPredictor):
    """Base for predictors parameterised by a polynomial ``order`` that need ``order + 1`` steps."""

    order: int = attrs.field(default=1, validator=[attrs.validators.instance_of(int), attrs.validators.ge(0)])

    @property
    def history(self) -> int:
        return self.order + 1

    def degrade(self, available: int) -> OrderedPredictor | None:
        return attrs.evolve(self, order=available - 1) if available >= 1 else None
