"""A plugin that fails is named in a tap.PluginError: at tap.enable (predictors and distances, tried on
tiny tensors) or at the step where it ran (probes, selectors, schedules); bad tap.enable arguments
are TAPErrors, never another exception."""

import attrs
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tap
from conftest import sample_flux, tiny_flux


@attrs.frozen
class WrongWeights(tap.LinearPredictor):
    """Two weights for a history of one."""

    name = "wrong-weights"
    history = property(lambda self: 1)
    exact_degree = property(lambda self: 0)

    def _weights(self, steps, target):
        return torch.ones(2, dtype=torch.float64)


class Raising(tap.Predictor):
    name = "raising"
    history = 1
    exact_degree = 0

    def _predict(self, steps, values, target):
        raise ZeroDivisionError("a bug in the plugin")


class WrongShape(tap.Predictor):
    name = "wrong-shape"
    history = 1
    exact_degree = 0

    def _predict(self, steps, values, target):
        return values[-1, ..., :1]


class RaisingDistance(tap.Distance):
    name = "raising-distance"

    def __call__(self, predicted, probe, last):
        raise KeyError("no such thing")


class RaisingProbe(tap.Probe):
    name = "raising-probe"

    def __call__(self, adapter, call):
        raise IndexError("probe bug")


class RaisingSchedule(tap.Schedule):
    name = "raising-schedule"

    def is_full(self, view):
        raise AttributeError("schedule bug")


@pytest.mark.parametrize(
    "plugin, message",
    [
        (WrongWeights, r"predictor 'wrong-weights.*' failed: RuntimeError"),
        (Raising, r"predictor 'raising.*' failed: ZeroDivisionError: a bug in the plugin"),
        (WrongShape, r"predictor 'wrong-shape.*' returned \(1, 3, 1\) .* expected \(1, 3, 4\)"),
    ],
)
def test_a_broken_predictor_is_refused_at_enable_by_name_and_the_model_is_untouched(flux, plugin, message):
    tap.register_predictor(plugin)
    with pytest.raises(tap.PluginError, match=message):
        tap.enable(flux, predictor=plugin.name, orders=(0,))
    assert not hasattr(flux, "_tap_handle") and not hasattr(flux, "_diffusers_hook")


def test_a_broken_distance_is_refused_at_enable_by_name(flux):
    tap.register_distance(RaisingDistance)
    with pytest.raises(tap.PluginError, match="distance 'raising-distance' failed: KeyError"):
        tap.enable(flux, orders=(1, 2), distance="raising-distance")


@pytest.mark.parametrize(
    "register, setting, message",
    [
        (tap.register_probe, dict(probe="raising-probe", orders=(1, 2)), "probe 'raising-probe' failed: IndexError: probe bug"),
        (tap.register_schedule, dict(schedule="raising-schedule"), "schedule 'raising-schedule' failed: AttributeError"),
    ],
)
def test_a_plugin_failing_at_run_time_is_named_and_the_next_generation_starts_clean(flux, register, setting, message):
    plugin = RaisingProbe if "probe" in setting else RaisingSchedule
    register(plugin)
    handle = tap.enable(flux, interval=3, **setting)
    with pytest.raises(tap.PluginError, match=message):
        sample_flux(flux, steps=6)
    assert all(state.r is None for state in handle.runtime.states.states().values())


VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 70), st.floats(allow_nan=True), st.text(max_size=12),
    st.sampled_from(["taylor", "reuse", "token", "fixed", "listed", "cosine", "first-block", "flux", "default"]),
    st.lists(st.integers(-20, 8), max_size=4).map(tuple), st.dictionaries(st.text(max_size=6), st.integers(-2, 5), max_size=2),
)
FIELDS = st.sampled_from([f.name for f in attrs.fields(tap.TAPConfig)] + ["preset", "not_a_field"])


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(arguments=st.dictionaries(FIELDS, VALUES, max_size=3))
def test_any_enable_arguments_work_or_raise_a_tap_error(arguments):
    model = tiny_flux()
    preset = arguments.pop("preset", None)
    try:
        handle = tap.enable(model, preset=preset, **arguments)
    except tap.TAPError:
        assert not hasattr(model, "_tap_handle") and not hasattr(model, "_diffusers_hook")
        return
    try:
        sample_flux(model, steps=3)
    except tap.TAPError:
        pass
    finally:
        handle.disable()
