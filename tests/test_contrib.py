"""The example third-party package contrib/tap-lsq, installed: discovery, use by name, predictor checks.

It goes through the same path as any user's plugin (an entry point in the group ``tap``), so it
covers packaging as well as the predictor. ``scripts/test`` installs it (``pip install -e contrib/tap-lsq``).
"""

import json

import pytest
import torch

import tap
from conftest import sample_flux, tap_cli
from tap.testing import check_predictor

pytest.importorskip("tap_lsq", reason="the example plugin is not installed: pip install -e contrib/tap-lsq (scripts/test does)")

def lsq_info(infos):
    [info] = [info for info in infos if info.distribution == "tap-lsq"]
    return info


def test_plugin_is_discovered_with_what_it_registered():
    info = lsq_info(tap.plugins.plugin_infos())
    assert (info.name, info.error) == ("lsq", None)
    assert info.registered == {"predictor": ("lsq",)}
    assert "lsq" in tap.predictor_names()


def test_list_plugins_json_shows_the_plugin(capsys):
    code, out, _ = tap_cli(capsys, "list-plugins", "--json")
    assert code == 0
    [entry] = [entry for entry in json.loads(out) if entry["distribution"] == "tap-lsq"]
    assert entry == {"name": "lsq", "distribution": "tap-lsq", "version": "0.1.0", "registered": {"predictor": ["lsq"]}, "covers": {}, "error": None, "conflicts": []}


@pytest.mark.parametrize("setting, loaded", [("", False), ("tap-lsq", True), ("lsq", True), ("other", False)])
def test_load_plugins_setting_selects_it(monkeypatch, setting, loaded):
    monkeypatch.setenv("TAP_LOAD_PLUGINS", setting)
    tap.plugins.reload()
    assert ("lsq" in tap.predictor_names()) is loaded
    assert "taylor" in tap.predictor_names()


def test_runtime_registration_under_its_name_is_a_conflict_naming_both():
    class Other(tap.LinearPredictor):
        name = "lsq"

    with pytest.raises(tap.PluginConflictError, match="tap-lsq.*runtime"):
        tap.register_predictor(Other)


@pytest.mark.parametrize("params", [{}, {"degree": 0, "window": 1}, {"degree": 0, "window": 3}, {"degree": 2, "window": 5}, {"degree": 3, "window": 8}])
def test_passes_check_predictor(params):
    check_predictor(tap.get_predictor("lsq", **params))


def test_defaults_and_label():
    predictor = tap.get_predictor("lsq", degree=2, window=5)
    assert (predictor.history, predictor.exact_degree) == (5, 2)
    assert str(tap.get_predictor("lsq")) == "lsq(degree=1, window=4)"


@pytest.mark.parametrize("params", [{"degree": 2, "window": 2}, {"degree": 1, "window": 1}, {"window": 0}])
def test_window_not_above_degree_is_refused(params):
    with pytest.raises(tap.ConfigError, match=r"window=\d+ must be greater than degree=\d+"):
        tap.get_predictor("lsq", **params)


def test_wrong_parameter_types_are_refused():
    with pytest.raises(tap.ConfigError, match="accepted: \\['degree', 'window'\\]"):
        tap.get_predictor("lsq", degree=1.5)


def test_weights_are_the_regression_line():
    """Degree 1 over steps 0..3 evaluated at 4: the ordinary least-squares line, worked by hand."""
    weights = tap.get_predictor("lsq").weights(torch.arange(4.0), 4.0)
    assert torch.allclose(weights, torch.tensor([-0.5, 0.0, 0.5, 1.0], dtype=torch.float64), atol=1e-12)


def test_window_equal_to_degree_plus_one_interpolates_like_taylor():
    steps = torch.tensor([3.0, 7.0, 9.0, 15.0])
    lsq = tap.get_predictor("lsq", degree=3, window=4).weights(steps, 19.0)
    taylor = tap.get_predictor("taylor", order=3).weights(steps, 19.0)
    assert torch.allclose(lsq, taylor, rtol=1e-9, atol=1e-9)


def test_smooths_noise_that_interpolation_amplifies():
    """On a noisy line, the fit over 6 steps misses the next value by less than the 2-step secant."""
    generator = torch.Generator().manual_seed(0)
    steps = torch.arange(6.0)
    truth = 0.3 * torch.cat([steps, torch.tensor([6.0])])[:, None] + 1.0
    noisy = truth[:6] + 0.1 * torch.randn(6, 2000, generator=generator, dtype=torch.float64)
    lsq_error = (tap.get_predictor("lsq", window=6).predict(steps, noisy, 6.0) - truth[6]).square().mean()
    taylor_error = (tap.get_predictor("taylor", order=1).predict(steps, noisy, 6.0) - truth[6]).square().mean()
    assert lsq_error < 0.5 * taylor_error


@pytest.mark.parametrize("available, expected", [(5, (2, 5)), (3, (2, 3)), (2, (1, 2)), (1, (0, 1)), (0, None)])
def test_degrade_shrinks_window_then_degree(available, expected):
    degraded = tap.get_predictor("lsq", degree=2, window=5).degrade(available)
    assert (None if degraded is None else (degraded.degree, degraded.window)) == expected


def test_config_builds_one_candidate_per_horizon():
    config = tap.TAPConfig(predictor="lsq", predictor_options={"window": 5}, horizons=(-1, 0))
    assert [c.label for c in config.family()] == ["lsq(degree=1, window=5)@-1", "lsq(degree=1, window=5)"]


def test_accelerates_a_transformer(flux):
    reference, _ = sample_flux(flux, steps=8)
    tap.enable(flux, predictor="lsq", predictor_options={"degree": 1, "window": 3}, interval=2)
    latents, _ = sample_flux(flux, steps=8)
    stats = tap.stats(flux)
    assert (stats.full_steps, stats.predicted_steps) == (4, 4)
    assert torch.isfinite(latents).all()
    assert (latents - reference).abs().max() < 0.5 * reference.abs().max()
