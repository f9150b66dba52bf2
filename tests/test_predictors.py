"""Predictors: polynomial exactness (hypothesis, via tap.testing) for every registered one, and known values."""

import attrs
import pytest
import torch

import tap
from tap.testing import check_insufficient_history, check_predictor


def predictor_settings():
    """Every registered predictor with its defaults, plus orders 0-3 for those that have an order."""
    settings = []
    for name in tap.predictor_names():
        cls = tap.plugins.registry().get("predictor", name).cls
        fields = {f.name for f in attrs.fields(cls)} if attrs.has(cls) else set()
        settings += [(name, {"order": order}) for order in range(4)] if "order" in fields else [(name, {})]
    return settings


@pytest.mark.parametrize("name, params", predictor_settings(), ids=lambda value: str(value))
def test_every_registered_predictor_reproduces_polynomials_up_to_its_degree(name, params):
    check_predictor(tap.get_predictor(name, **params))


def test_the_built_ins_are_registered():
    assert {"reuse", "taylor", "taylorseer", "hermite"} <= set(tap.predictor_names())


@pytest.mark.parametrize("name, degree", [("reuse", 0), ("taylor", 3), ("taylorseer", 1), ("hermite", 0)])
def test_declared_exact_degrees(name, degree):
    params = {} if name == "reuse" else {"order": 3}
    assert tap.get_predictor(name, **params).exact_degree == degree


def test_taylor_extrapolates_a_cubic_through_uneven_steps_in_bf16():
    steps = torch.tensor([0.0, 2.0, 7.0, 9.0])
    values = (0.5 * steps**3 - steps + 3).to(torch.bfloat16)
    predicted = tap.get_predictor("taylor", order=3).predict(steps, values, 12.0)
    assert predicted.dtype == torch.float32
    exact = values.float()  # the bf16-rounded samples are what the polynomial goes through
    lagrange = tap.get_predictor("taylor", order=3).weights(steps, 12.0).float() @ exact
    assert torch.allclose(predicted, lagrange)


def test_taylorseer_matches_its_published_recurrence_on_a_uniform_grid():
    # TaylorSeer: d1 = (f2 - f1) / N, d2 = (d1 - d1_prev) / N with d1_prev = (f1 - f0) / N; f(k) = f2 + d1 k + d2 k^2 / 2.
    f0, f1, f2, gap, k = 1.0, 4.0, 2.0, 3.0, 2.0
    d1, d1_prev = (f2 - f1) / gap, (f1 - f0) / gap
    expected = f2 + d1 * k + (d1 - d1_prev) / gap * k**2 / 2
    predicted = tap.get_predictor("taylorseer", order=2).predict(torch.tensor([0.0, 3.0, 6.0]), torch.tensor([f0, f1, f2]), 8.0)
    assert float(predicted) == pytest.approx(expected)


def test_hermite_matches_hicache_formula():
    # HiCache: F + sum_k d_k * H_k(scale * x) * scale^k / k!, physicists' Hermite H_1(y) = 2y, H_2(y) = 4y^2 - 2.
    f0, f1, f2, x, s = 1.0, 4.0, 2.0, 2.0, 0.5
    d1, d2 = f2 - f1, (f2 - f1) - (f1 - f0)
    y = s * x
    expected = f2 + d1 * 2 * y * s + d2 * (4 * y**2 - 2) * s**2 / 2
    predicted = tap.get_predictor("hermite", order=2, scale=s).predict(torch.tensor([0.0, 1.0, 2.0]), torch.tensor([f0, f1, f2]), 4.0)
    assert float(predicted) == pytest.approx(expected)


@pytest.mark.parametrize("name", ["taylor", "taylorseer", "hermite"])
def test_too_few_entries_is_a_clear_error(name):
    predictor = tap.get_predictor(name, order=2)
    check_insufficient_history(predictor)
    with pytest.raises(tap.InsufficientHistoryError, match=r"order=2.*\) needs 3 cached full steps, got 2"):
        predictor.predict(torch.tensor([0.0, 1.0]), torch.zeros(2, 4), 3.0)


def test_predictions_are_vectorised_over_any_shape():
    values = torch.randn(3, 2, 5, 7)
    predicted = tap.get_predictor("taylor", order=2).predict(torch.tensor([0, 4, 6]), values, 9)
    assert predicted.shape == (2, 5, 7)


def test_bad_parameters_name_the_accepted_ones():
    with pytest.raises(tap.ConfigError, match="accepted: \\['order'\\]"):
        tap.get_predictor("taylor", degree=2)
    with pytest.raises(ValueError, match="order"):
        tap.get_predictor("taylor", order=-1)
