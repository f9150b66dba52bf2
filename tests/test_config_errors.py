"""Every bad input to TAPConfig, Candidate, a plugin's options or a preset file is a tap.ConfigError
naming the field, the value and what is allowed; surprising values are refused with their bound."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tap
from tap import Candidate, ConfigError, TAPConfig


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(orders=1), "orders must be a non-empty tuple of ints, got 1"),
        (dict(orders=()), "orders must be a non-empty tuple of ints"),
        (dict(horizons="0"), "horizons must be a non-empty tuple of ints, got '0'"),
        (dict(candidates=5), "candidates must be a tuple of tap.Candidate instances, got 5"),
        (dict(predictor=["taylor"]), r"predictor=\['taylor'\]: predictor names are strings.*registered predictors: .*taylor"),
        (dict(predictor="nope"), "predictor='nope': unknown predictor 'nope'; registered predictors: .*taylor"),
        (dict(predictor_options=[1]), r"predictor_options must be a dict of parameter names to values, got \[1\]"),
        (dict(predictor_options="x"), "predictor_options must be a dict of parameter names to values, got 'x'"),
        (dict(selector_options={1: 2}), "selector_options must be a dict"),
        (dict(cache_dtype=["float32"]), r"cache_dtype=\['float32'\]; allowed: \['bfloat16'"),
        (dict(adapter=3), "adapter=3: adapter names are strings"),
        (dict(interval=True), "interval must be an int >= 1, got True"),
        (dict(predictor_options={"scale": 0}, predictor="hermite"), r"predictor_options: predictor 'hermite' rejects parameters .*'scale' must be > 0.0: 0.0; accepted: \['order', 'scale'\]"),
        (dict(predictor_options={"degree": 2}), r"predictor 'taylor' rejects parameters .*unknown parameter 'degree'; accepted: \['order'\]"),
        (dict(schedule="probe-refresh", schedule_options={"threshold": -1}), "schedule_options: schedule 'probe-refresh' rejects parameters {'threshold': -1}: 'threshold' must be > 0.0: -1.0; accepted: .*'threshold'"),
        (dict(schedule="listed", schedule_options={"steps": []}), r"schedule_options: listed schedule: steps must be a non-empty list of step indices >= 0, got \(\)"),
        (dict(schedule="listed", schedule_options={"steps": "3"}), "listed schedule: steps must be a non-empty list"),
        (dict(selector="smooth", selector_options={"window": 2}), "selector_options: smooth selector: window must be an odd int >= 1, got 2"),
        (dict(selector="fixed", selector_options={"candidate": "x"}), r"selector 'fixed' rejects parameters {'candidate': 'x'}.*accepted: \['candidate'\]"),
    ],
)
def test_wrong_fields_are_config_errors_naming_field_value_and_what_is_allowed(fields, message):
    with pytest.raises(ConfigError, match=message) as error:
        TAPConfig(**fields)
    assert "Attribute(" not in str(error.value)  # no attrs internals


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(predictor_options={"order": 2}), r"predictor_options={'order': 2}: the order of 'taylor' comes from orders=\(1,\); set orders=\(2,\) instead"),
        (dict(orders=(50,)), r"orders=\(50,\): each must be in \[0, 4\]"),
        (dict(orders=(1, 10**6)), r"orders=\(1, 1000000\): each must be in \[0, 4\]"),
        (dict(horizons=(-1000,)), r"horizons=\(-1000,\): each must be in \[-16, 0\]"),
        (dict(horizons=(1,)), r"horizons=\(1,\): each must be in \[-16, 0\]"),
        (dict(schedule="listed", schedule_options={"steps": [-5, 10]}), r"steps must be a non-empty list of step indices >= 0, got \(-5, 10\)"),
        (dict(schedule="listed", schedule_options={"steps": [5, 50, 100], "num_steps": 50}), r"steps \[50, 100\] are not below num_steps=50"),
    ],
)
def test_surprising_values_are_refused_with_their_bound(fields, message):
    with pytest.raises(ConfigError, match=message):
        TAPConfig(**fields)


def test_the_bounds_themselves_are_accepted():
    TAPConfig(orders=(0, 4), horizons=(-16, 0))
    TAPConfig(schedule="listed", schedule_options={"steps": [0, 49], "num_steps": 50})


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Candidate(tap.get_predictor("taylor"), horizon=1), r"Candidate horizon must be an int in \[-16, 0\].*got 1"),
        (lambda: Candidate(tap.get_predictor("taylor"), horizon=-17), "got -17"),
        (lambda: Candidate(tap.get_predictor("taylor"), horizon=0.0), "got 0.0"),
        (lambda: Candidate("taylor"), "Candidate predictor must be a tap.Predictor instance .*got 'taylor'"),
        (lambda: tap.get_schedule("listed", steps=[-5, 100]), "got \\(-5, 100\\)"),
        (lambda: tap.get_predictor("taylor", order="2"), "predictor 'taylor' rejects parameters {'order': '2'}: 'order' must be <class 'int'>"),
        (lambda: TAPConfig.preset(5), "unknown preset 5"),
        (lambda: TAPConfig.preset("paper", intervl=3), r"unknown TAPConfig fields \['intervl'\]"),
        (lambda: TAPConfig().replace(orders=1), "orders must be a non-empty tuple of ints"),
    ],
)
def test_other_wrong_arguments_are_config_errors(make, message):
    with pytest.raises(ConfigError, match=message) as error:
        make()
    assert "Attribute(" not in str(error.value)


def write_preset(tmp_path, document) -> str:
    path = tmp_path / "preset.json"
    path.write_text(json.dumps(document))
    return str(path)


@pytest.mark.parametrize(
    "document, message",
    [
        ({"tap_preset": 1}, "is not a tap preset file \\(no 'config' entry\\)"),
        ({"tap_preset": 2, "config": {}}, "has tap_preset=2; this tap reads format 1"),
        ({"tap_preset": "1", "config": {}}, "has tap_preset='1'; this tap reads format 1"),
        ({"config": {"orders": [1, 1]}}, r"orders=\(1, 1\) names a value twice"),
        ({"config": {"horizons": [0, -1, 0]}}, r"horizons=\(0, -1, 0\) names a value twice"),
        ([1, 2], "is not a tap preset file"),
        ({"config": None}, "a preset's config must be an object of TAPConfig fields, got None"),
        ({"config": {"interval": "6"}}, "interval must be an int >= 1, got '6'"),
        ({"config": {"orders": None}}, "orders must be a non-empty tuple of ints, got None"),
        ({"config": {"orders": "12"}}, "orders must be a non-empty tuple of ints, got '12'"),
        ({"config": {"intervl": 3}}, r"unknown TAPConfig fields \['intervl'\]"),
        ({"config": {"candidates": 5}}, "candidates must be a list of"),
        ({"config": {"candidates": [{"params": {}, "horizon": 0}]}}, "a candidate must be {'predictor': name"),
        ({"config": {"candidates": [{"predictor": "taylor", "params": None}]}}, "a candidate must be"),
        ({"config": {"candidates": [{"predictor": "taylor", "params": {}, "horizon": "0"}]}}, "Candidate horizon must be an int"),
        ({"config": {"candidates": [{"predictor": "taylor", "params": {"order": -1}}]}}, "predictor 'taylor' rejects parameters {'order': -1}"),
    ],
)
def test_bad_preset_files_are_config_errors_naming_the_file(tmp_path, document, message):
    path = write_preset(tmp_path, document)
    with pytest.raises(ConfigError, match=message) as error:
        TAPConfig.load(path)
    assert path in str(error.value)


def test_a_preset_file_with_an_unknown_predictor_names_the_file(tmp_path):
    path = write_preset(tmp_path, {"config": {"candidates": [{"predictor": "nope", "params": {}, "horizon": 0}]}})
    with pytest.raises(tap.UnknownNameError, match=f"preset file '{path}': unknown predictor 'nope'"):
        TAPConfig.preset(path)


def test_a_preset_with_explicit_candidates_round_trips(tmp_path):
    config = TAPConfig(candidates=(Candidate(tap.get_predictor("hermite", order=2, scale=0.25), -2),), selector="fixed")
    config.save(tmp_path / "p.json")
    assert TAPConfig.load(tmp_path / "p.json") == config


# Values of every kind a caller might pass by mistake, plus valid names and options so that deeper
# validation (plugin options, schedules, selectors) is reached too.
ANYTHING = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**7), 10**7), st.floats(allow_nan=True), st.text(max_size=5),
    st.lists(st.integers(-100, 100), max_size=4), st.tuples(st.integers(-20, 20)), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
NAMES = st.sampled_from(["taylor", "hermite", "reuse", "fixed", "probe-refresh", "listed", "token", "smooth", "margin", "fixed", "flux", "cosine"])
OPTIONS = st.dictionaries(
    st.sampled_from(["order", "scale", "threshold", "min_gap", "signal", "steps", "num_steps", "window", "width", "margin", "candidate", "offset"]),
    ANYTHING, max_size=3,
)
FIELDS = {
    "interval": ANYTHING, "warmup": ANYTHING, "final_full": ANYTHING, "schedule": NAMES | ANYTHING,
    "schedule_options": OPTIONS | ANYTHING, "predictor": NAMES | ANYTHING, "predictor_options": OPTIONS | ANYTHING,
    "orders": ANYTHING, "horizons": ANYTHING, "candidates": ANYTHING | st.lists(st.builds(Candidate, st.just(tap.get_predictor("reuse")), st.integers(-16, 0))),
    "probe": NAMES | ANYTHING, "distance": NAMES | ANYTHING, "selector": NAMES | ANYTHING, "selector_options": OPTIONS | ANYTHING,
    "adapter": NAMES | ANYTHING, "cache_dtype": st.sampled_from(["float32", "bfloat16"]) | ANYTHING,
}


@settings(deadline=None, database=None)
@given(st.fixed_dictionaries({}, optional=FIELDS))
def test_any_tapconfig_is_built_or_refused_with_a_config_error(fields):
    try:
        config = TAPConfig(**fields)
    except ConfigError:
        return
    assert TAPConfig.from_dict(config.to_dict()) == config  # and an accepted one survives a preset round trip


@settings(deadline=None, database=None)
@given(ANYTHING | st.just(tap.get_predictor("taylor")), ANYTHING)
def test_any_candidate_is_built_or_refused_with_a_config_error(predictor, horizon):
    try:
        Candidate(predictor, horizon)
    except ConfigError:
        pass
