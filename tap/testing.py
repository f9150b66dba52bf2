"""Checks that predictor authors run on their own classes (tap runs them on every registered one).

Example::

    from tap.testing import check_predictor
    check_predictor(MyPredictor(order=2))   # raises AssertionError with a counterexample
"""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tap.errors import InsufficientHistoryError
from tap.predictor import Predictor

MAX_STEP = 60
MAX_TARGET_OFFSET = 8
# Relative tolerance of the polynomial check. In float64 (eps ~1.1e-16) an interpolating
# extrapolation of degree <= 4 through distinct integer steps in [0, 60], evaluated up to 8 steps
# past the last one, amplifies rounding by its Lebesgue constant (sum of |weights|), which stays
# below 1e6 there, so honest errors are < 1e-9 of the values' scale; a wrong formula misses by
# O(1) of that scale. 1e-7 sits between the two with margins of 100x on both sides.
RELATIVE_TOLERANCE = 1e-7


@st.composite
def polynomial_cases(draw, predictor: Predictor):
    """(steps, values, target, expected) for a random polynomial of degree <= exact_degree."""
    count = predictor.history + draw(st.integers(0, 3))
    steps = sorted(draw(st.lists(st.integers(0, MAX_STEP), min_size=count, max_size=count, unique=True)))
    target = steps[-1] + draw(st.integers(1, MAX_TARGET_OFFSET))
    degree = draw(st.integers(0, predictor.exact_degree))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=3)))
    seed = draw(st.integers(0, 2**31 - 1))
    generator = torch.Generator().manual_seed(seed)
    coefficients = torch.rand((degree + 1, *shape), generator=generator, dtype=torch.float64) * 4 - 2
    # Scale coefficient i by 1/MAX_STEP^i so every term has a comparable magnitude over [0, 68].
    scales = torch.tensor([float(MAX_STEP) ** -i for i in range(degree + 1)], dtype=torch.float64)
    coefficients = coefficients * scales.view(-1, *([1] * len(shape)))

    def evaluate(t: float) -> torch.Tensor:
        return sum(coefficients[i] * t**i for i in range(degree + 1))

    values = torch.stack([evaluate(float(s)) for s in steps])
    return torch.tensor(steps, dtype=torch.float64), values, float(target), evaluate(float(target))


def check_polynomial_exactness(predictor: Predictor, max_examples: int = 200) -> None:
    """Assert that ``predictor`` reproduces every polynomial of degree <= its ``exact_degree``.

    Random coefficients, random distinct non-uniform integer step positions in [0, 60], targets
    1..8 steps past the last cached one, random trailing shapes, float64.
    """

    @settings(max_examples=max_examples, deadline=None, database=None)
    @given(polynomial_cases(predictor))
    def check(case):
        steps, values, target, expected = case
        predicted = predictor.predict(steps, values, target)
        assert predicted.shape == expected.shape, f"{predictor}: shape {tuple(predicted.shape)} != {tuple(expected.shape)}"
        scale = 1.0 + float(values.abs().max()) + float(expected.abs().max())
        error = float((predicted - expected).abs().max())
        assert error <= RELATIVE_TOLERANCE * scale, (
            f"{predictor} (exact_degree={predictor.exact_degree}) misses a polynomial: steps={steps.tolist()}, "
            f"target={target}, error={error:.3g} > {RELATIVE_TOLERANCE * scale:.3g}"
        )

    check()


def check_insufficient_history(predictor: Predictor) -> None:
    """Assert that predicting from fewer entries than ``history`` raises InsufficientHistoryError."""
    count = predictor.history - 1
    steps = torch.arange(count, dtype=torch.float64)
    values = torch.zeros(count, 2)
    try:
        predictor.predict(steps, values, float(count + 1))
    except InsufficientHistoryError:
        return
    raise AssertionError(f"{predictor} accepted {count} entries although it needs {predictor.history}")


def check_predictor(predictor: Predictor, max_examples: int = 200) -> None:
    """Every check a predictor must pass: polynomial exactness and the history error."""
    if not math.isfinite(predictor.exact_degree) or predictor.exact_degree < 0:
        raise AssertionError(f"{predictor}: exact_degree must be >= 0, got {predictor.exact_degree}")
    check_polynomial_exactness(predictor, max_examples)
    check_insufficient_history(predictor)
