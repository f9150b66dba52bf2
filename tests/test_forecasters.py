"""The forecaster plugins foca, dmd and spectrum: exactness (via tap.testing), their formulas,
degrade, adversarial histories, and end-to-end runs on the demo model."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tap
from conftest import demo_image, quiet_demo
from tap.testing import check_exponential_exactness, check_predictor
from tap_plugins.forecasters import DMD, chebyshev
from tap_plugins.predictors import Taylor

FAST = settings(deadline=None, database=None)


def test_the_forecasters_are_registered():
    assert {"foca", "dmd", "spectrum"} <= set(tap.predictor_names())


@pytest.mark.parametrize(
    "name, params, degree",
    [
        ("foca", {}, 1),
        ("foca", {"max_horizon": 3}, 0),
        ("dmd", {}, 1),
        ("dmd", {"history": 6}, 1),
        ("spectrum", {}, 0),  # ridge > 0: constants only
        ("spectrum", {"ridge": 0.0}, 2),
        ("spectrum", {"ridge": 0.0, "degree": 3, "history": 5}, 3),
    ],
    ids=str,
)
def test_each_reproduces_the_polynomials_it_declares(name, params, degree):
    predictor = tap.get_predictor(name, **params)
    assert predictor.exact_degree == degree
    check_predictor(predictor)


@pytest.mark.parametrize("history", [4, 5, 6])
def test_dmd_reproduces_sums_of_exponentials_of_any_shape(history):
    # floor(history / 2) terms: identifiable from scalars too (Prony's delay embedding).
    check_exponential_exactness(tap.get_predictor("dmd", history=history), history // 2)


@pytest.mark.parametrize("history", [4, 5])
def test_dmd_reproduces_history_minus_one_exponentials_of_wide_features(history):
    generator = torch.Generator().manual_seed(history)
    terms = history - 1
    rates = torch.tensor([-0.2, -0.07, 0.05, 0.1][:terms], dtype=torch.float64)
    amplitudes = torch.randn(terms, 2, 6, generator=generator, dtype=torch.float64)  # [terms, B, D]

    def f(t):
        return torch.einsum("k,kbd->bd", torch.exp(rates * t), amplitudes)

    steps = torch.tensor([5.0 + 3 * j for j in range(history)], dtype=torch.float64)
    values = torch.stack([f(float(s)) for s in steps])
    for offset in (1, 2, 3, 7):  # k = 1/3, 2/3, 1, 7/3 spacings
        target = float(steps[-1]) + offset
        assert torch.allclose(tap.get_predictor("dmd", history=history).predict(steps, values, target), f(target), rtol=0, atol=1e-9)


def test_check_exponential_exactness_rejects_a_polynomial_predictor():
    with pytest.raises(AssertionError, match=r"taylor\(order=2\) misses a sum of 1 exponentials"):
        check_exponential_exactness(tap.get_predictor("taylor", order=2), 1)


def test_dmd_uses_the_evenly_spaced_suffix_and_falls_back_to_taylor_without_one():
    dmd = tap.get_predictor("dmd", history=5)

    def f(t):
        return 2.0 * np.exp(-0.3 * t) - 0.5 * np.exp(0.1 * t)

    # Steps 1, 3, 5, 7 are evenly spaced: two exponentials of a scalar are identified from them.
    steps = torch.tensor([0.0, 1.0, 3.0, 5.0, 7.0], dtype=torch.float64)
    values = torch.tensor([f(s) for s in steps.tolist()], dtype=torch.float64)
    assert float(dmd.predict(steps, values, 10.0)) == pytest.approx(f(10.0), abs=1e-10)
    # No three evenly spaced steps at the end: the line through the last two.
    steps = torch.tensor([0.0, 1.0, 3.0, 6.0, 10.0], dtype=torch.float64)
    values = torch.tensor([f(s) for s in steps.tolist()], dtype=torch.float64)
    assert torch.equal(dmd.predict(steps, values, 12.0), Taylor(order=1).predict(steps, values, 12.0))


def test_dmd_fits_each_sample_of_a_batch_alone():
    dmd = tap.get_predictor("dmd")
    generator = torch.Generator().manual_seed(0)
    steps = torch.arange(4, dtype=torch.float64) * 2
    values = torch.randn(4, 3, 5, 8, generator=generator)
    together = dmd.predict(steps, values, 9.0)
    for b in range(3):
        assert torch.allclose(together[b], dmd.predict(steps, values[:, b : b + 1], 9.0)[0])


def test_dmd_falls_back_sample_by_sample():
    steps = torch.arange(4, dtype=torch.float64)
    decaying = torch.exp(-0.4 * steps)[:, None] * torch.linspace(1, 2, 6, dtype=torch.float64)
    values = torch.stack([decaying, torch.zeros(4, 6, dtype=torch.float64)], dim=1)  # [H, B=2, D]
    predicted = tap.get_predictor("dmd").predict(steps, values, 3.5)
    assert torch.allclose(predicted[0], float(torch.exp(torch.tensor(-1.4, dtype=torch.float64))) * torch.linspace(1, 2, 6, dtype=torch.float64))
    assert torch.equal(predicted[1], torch.zeros(6, dtype=torch.float64))


def test_foca_is_bdf2_forecast_then_heun_calibration():
    foca = tap.get_predictor("foca")
    f0, f1, f2 = 1.0, 4.0, 2.0
    # Uniform h = 1, k = 1: BDF2 derivatives (3 F_n - 4 F_{n-1} + F_{n-2}) / 2 at the anchor and at the forecast.
    g2 = (3 * f2 - 4 * f1 + f0) / 2
    forecast = f2 + g2
    g_forecast = (3 * forecast - 4 * f2 + f1) / 2
    expected = f2 + (g2 + g_forecast) / 2
    predicted = foca.predict(torch.tensor([0.0, 1.0, 2.0]), torch.tensor([f0, f1, f2], dtype=torch.float64), 3.0)
    assert float(predicted) == pytest.approx(expected)


def test_foca_uses_the_real_gaps():
    # Uneven steps: the derivatives are those of the quadratics through the real positions.
    s, values, target = [0.0, 3.0, 4.0], [1.0, -2.0, 0.5], 6.5
    k = target - s[2]
    g2 = np.polyval(np.polyder(np.polyfit(s, values, 2)), s[2])
    forecast = values[2] + k * g2
    g_forecast = np.polyval(np.polyder(np.polyfit([s[1], s[2], target], [values[1], values[2], forecast], 2)), target)
    expected = values[2] + k / 2 * (g2 + g_forecast)
    predicted = tap.get_predictor("foca").predict(torch.tensor(s), torch.tensor(values, dtype=torch.float64), target)
    assert float(predicted) == pytest.approx(expected, rel=1e-10)


def test_foca_max_horizon_blends_toward_the_anchor_like_cache_dit():
    steps, values = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([0.0, 1.0, 3.0], dtype=torch.float64)
    damped, plain = tap.get_predictor("foca", max_horizon=3), tap.get_predictor("foca")
    assert torch.equal(damped.predict(steps, values, 4.0), plain.predict(steps, values, 4.0))
    at_three = plain.predict(steps, values, 5.0)
    assert float(damped.predict(steps, values, 8.0)) == pytest.approx(float(0.5 * at_three + 0.5 * values[-1]))


@FAST
@given(
    degree=st.integers(0, 4),
    extra=st.integers(0, 3),
    data=st.data(),
)
def test_spectrum_without_ridge_reproduces_chebyshev_series_within_its_degree(degree, extra, data):
    history = degree + 1 + extra
    steps = sorted(data.draw(st.lists(st.integers(0, 60), min_size=history, max_size=history, unique=True)))
    target = steps[-1] + data.draw(st.integers(1, 8))
    used = data.draw(st.integers(0, degree))
    coefficients = torch.tensor(data.draw(st.lists(st.floats(-2, 2), min_size=used + 1, max_size=used + 1)), dtype=torch.float64)
    s = torch.tensor(steps, dtype=torch.float64)

    def series(t):
        t = torch.as_tensor(t, dtype=torch.float64)
        x = 2 * (t - s[0]) / (s[-1] - s[0]) - 1 if history > 1 else torch.zeros_like(t)
        return chebyshev(x, used) @ coefficients

    predicted = tap.get_predictor("spectrum", degree=degree, history=history, ridge=0.0).predict(s, series(s), float(target))
    expected = series(float(target))
    scale = 1 + float(series(s).abs().max()) + float(expected.abs().max())
    assert abs(float(predicted - expected)) <= 1e-7 * scale


def test_spectrum_weights_are_the_chebyshev_ridge_solution():
    steps, target, lam = torch.tensor([0.0, 2.0, 3.0, 7.0, 8.0], dtype=torch.float64), 10.0, 0.05
    x = 2 * (steps - steps[0]) / (steps[-1] - steps[0]) - 1
    basis = chebyshev(x, 2)
    penalty = torch.diag(torch.tensor([0.0, lam, lam], dtype=torch.float64))
    expected = chebyshev(torch.tensor(2 * 10.0 / 8 - 1, dtype=torch.float64), 2) @ torch.linalg.solve(basis.T @ basis + penalty, basis.T)
    weights = tap.get_predictor("spectrum", degree=2, history=5, ridge=lam).weights(steps, target)
    assert torch.allclose(weights, expected)
    assert float(weights.sum()) == pytest.approx(1.0)  # T_0 is not penalised: constants are kept


def test_spectrum_needs_history_of_at_least_degree_plus_one():
    with pytest.raises(tap.ConfigError, match="history must be at least degree \\+ 1 = 4"):
        tap.get_predictor("spectrum", degree=3, history=3)


def test_degrade():
    foca, dmd, spectrum = tap.get_predictor("foca"), tap.get_predictor("dmd", history=6), tap.get_predictor("spectrum")
    assert foca.degrade(2) == Taylor(order=1) and foca.degrade(1) == Taylor(order=0) and foca.degrade(0) is None
    assert dmd.degrade(5) == DMD(history=5) and dmd.degrade(4) == DMD(history=4)
    assert dmd.degrade(3) == Taylor(order=1) and dmd.degrade(1) == Taylor(order=0) and dmd.degrade(0) is None
    assert str(spectrum.degrade(3)) == "spectrum(degree=2, history=3, ridge=0.001)"
    assert str(spectrum.degrade(2)) == "spectrum(degree=1, history=2, ridge=0.001)"
    assert str(spectrum.degrade(1)) == "spectrum(degree=0, history=1, ridge=0.001)" and spectrum.degrade(0) is None
    for predictor in (foca, dmd, spectrum):
        with pytest.raises(tap.InsufficientHistoryError, match=f"needs {predictor.history} cached full steps, got 2"):
            predictor.predict(torch.tensor([0.0, 1.0]), torch.zeros(2, 3), 2.0)
    # In the runtime's candidate selection, each one degrades early in a generation.
    from tap.family import Candidate, active_set

    family = tuple(Candidate(p) for p in (foca, dmd, spectrum))
    assert active_set(family, (0, 1), 2).labels == [str(foca), str(dmd), str(spectrum)]
    assert [str(p) for p in active_set(family, (0, 1), 2).predictors] == ["taylor(order=1)", "taylor(order=1)", str(spectrum.degrade(2))]


def adversarial_histories():
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(1, 2, 16, 8, generator=generator)
    return {
        "constant": torch.full((6, 2, 16, 8), 3.0),
        "zero": torch.zeros(6, 2, 16, 8),
        "huge": torch.randn(6, 2, 16, 8, generator=generator) * 1e30,
        "huge-growing": torch.stack([torch.full((2, 16, 8), 1e30) * 1.5**j for j in range(6)]),
        "near-identical": base.expand(6, -1, -1, -1) + 1e-6 * torch.randn(6, 2, 16, 8, generator=generator),
        "noise": torch.randn(6, 2, 16, 8, generator=generator),
    }


@pytest.mark.parametrize("case", sorted(adversarial_histories()))
@pytest.mark.parametrize("name", ["foca", "dmd", "spectrum"])
def test_finite_on_adversarial_histories(name, case):
    values = adversarial_histories()[case]
    predictor = tap.get_predictor(name)
    for steps in (torch.arange(6.0) * 3, torch.tensor([0.0, 1.0, 3.0, 4.0, 8.0, 9.0])):
        for target in (float(steps[-1]) + 1, float(steps[-1]) + 8):
            predicted = predictor.predict(steps, values, target)
            assert predicted.shape == values.shape[1:] and predicted.dtype == torch.float32
            assert bool(torch.isfinite(predicted).all()), f"{predictor} on {case}, steps {steps.tolist()}, target {target}"


def test_dmd_on_ill_conditioned_histories_stays_with_the_cached_values():
    dmd, taylor = tap.get_predictor("dmd"), Taylor(order=1)
    histories = adversarial_histories()
    steps = torch.arange(6.0) * 3
    assert torch.equal(dmd.predict(steps, histories["zero"], 16.0), torch.zeros(2, 16, 8))
    assert torch.allclose(dmd.predict(steps, histories["constant"], 16.0), torch.full((2, 16, 8), 3.0))
    near = histories["near-identical"]
    # Differences below rcond are truncated: rank 1, as close to reuse and to the line as those are.
    assert torch.allclose(dmd.predict(steps, near, 40.0), taylor.predict(steps, near, 40.0), atol=1e-4)
    # A fit whose forecast explodes falls back to the line through the last two steps.
    values = torch.tensor([1.0, 1.0, 1.0, 50.0], dtype=torch.float64)
    assert torch.equal(dmd.predict(torch.arange(4.0), values, 11.0), taylor.predict(torch.arange(4.0), values, 11.0))


@pytest.fixture(scope="module")
def demo_pipe():
    return quiet_demo()


@pytest.mark.parametrize("name", ["foca", "dmd", "spectrum"])
def test_runs_end_to_end_on_the_demo_model(name, demo_pipe, monkeypatch):
    fits = []
    fit = DMD._fit
    monkeypatch.setattr(DMD, "_fit", lambda self, *args: fits.append(fit(self, *args)) or fits[-1])
    with tap.accelerate(demo_pipe, predictor=name, interval=2):
        image = demo_image(demo_pipe, steps=10)  # full steps 0, 2, 4, 6, 8: evenly spaced
        stats = tap.stats(demo_pipe)
    assert bool(torch.isfinite(image).all())
    assert stats.predicted_steps > 0 and stats.blocks_skipped > 0 and stats.fallbacks == 0 and not stats.non_finite
    assert list(stats.candidate_share) == [str(tap.get_predictor(name))]
    if name == "dmd":
        assert fits and any(weights is not None for weights in fits)  # the exponential fit ran, not only its fallback


def test_the_guide_examples_run():
    guide = Path(__file__).resolve().parent.parent / "docs" / "forecasters.md"
    text = guide.read_text()
    blocks = list(re.finditer(r"^```python\n(.*?)^```", text, re.MULTILINE | re.DOTALL))
    assert blocks
    for match in blocks:
        code = "\n" * text.count("\n", 0, match.start(1)) + match[1]
        exec(compile(code, str(guide), "exec"), {"__name__": "docs_example"})
