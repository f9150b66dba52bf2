"""Plugin discovery and registration: run-time registration, conflicts, broken plugins, the env switch, the CLI.

Fake distributions are installed on a temporary ``sys.path`` entry and loaded in-process with
``tap.plugins.reload()``; whatever else is installed (contrib/tap-lsq, tests/plugins/tap-odd) loads too.
"""

import json
import subprocess
import sys
import textwrap

import attrs
import pytest
import torch

import tap


@attrs.frozen
class Doubling(tap.LinearPredictor):
    """A deliberately simple predictor: twice the last value (exact for nothing but zero)."""

    name = "doubling"

    @property
    def history(self):
        return 1

    @property
    def exact_degree(self):
        return 0

    def _weights(self, steps, target):
        return torch.full((1,), 2.0, dtype=torch.float64)


def test_register_use_and_unregister_at_run_time():
    tap.register_predictor(Doubling)
    assert "doubling" in tap.predictor_names()
    assert float(tap.get_predictor("doubling").predict(torch.tensor([3.0]), torch.tensor([1.5]), 4)) == 3.0
    tap.unregister_predictor("doubling")
    assert "doubling" not in tap.predictor_names()
    with pytest.raises(tap.UnknownNameError, match="unknown predictor 'doubling'; registered predictors: .*taylor"):
        tap.get_predictor("doubling")


def test_register_as_decorator_with_a_name():
    @tap.register_predictor(name="twice")
    @attrs.frozen
    class Twice(Doubling):
        pass

    assert tap.get_predictor("twice").name == "doubling"  # class attribute unchanged; registry key is 'twice'
    assert "twice" in tap.predictor_names()


def test_registering_a_taken_name_names_both_sources():
    @attrs.frozen
    class Impostor(Doubling):
        name = "taylor"

    with pytest.raises(tap.PluginConflictError) as error:
        tap.register_predictor(Impostor)
    message = str(error.value)
    assert "'taylor' is registered twice" in message and "tap-diffusion" in message and "runtime" in message


def test_an_unknown_constructor_parameter_is_named_plainly():
    with pytest.raises(tap.ConfigError) as error:
        tap.get_predictor("taylor", order=1, bogus=2)
    assert str(error.value) == "predictor 'taylor' rejects parameters {'order': 1, 'bogus': 2}: unknown parameter 'bogus'; accepted: ['order']"


def test_registering_the_wrong_kind_is_refused():
    with pytest.raises(tap.ConfigError, match="must be a subclass of tap.Predictor"):
        tap.register_predictor(int)


def test_an_aliased_predictor_round_trips_through_a_preset_file(tmp_path):
    tap.register_predictor(Doubling, name="twice")  # registered only under the alias, not as 'doubling'
    config = tap.TAPConfig(candidates=(tap.Candidate(Doubling(), -1), tap.Candidate(tap.get_predictor("taylor", order=2))))
    config.save(tmp_path / "alias.json")
    assert json.loads((tmp_path / "alias.json").read_text())["config"]["candidates"][0]["predictor"] == "twice"
    assert tap.TAPConfig.load(tmp_path / "alias.json") == config


def make_distribution(root, distribution, module, source):
    """A fake installed distribution on ``root`` whose entry point in group ``tap`` is ``module``."""
    info = root / f"{distribution.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[tap]\n{module} = {module}\n")
    (root / f"{module}.py").write_text(textwrap.dedent(source))


BROKEN = "raise ImportError('this plugin is broken on purpose')\n"
GOOD = """
    import attrs, torch, tap

    @attrs.frozen
    class Halving(tap.LinearPredictor):
        name = "halving"
        history = property(lambda self: 1)
        exact_degree = property(lambda self: 0)
        def _weights(self, steps, target):
            return torch.full((1,), 0.5, dtype=torch.float64)

    @tap.hookimpl
    def register_predictors(register):
        register(Halving)
"""


@pytest.fixture
def install(tmp_path, monkeypatch):
    """``install(distribution, module, source)`` puts a fake distribution on ``sys.path`` for ``tap.plugins.reload()``."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def add(distribution, module, source):
        make_distribution(tmp_path, distribution, module, source)
        monkeypatch.delitem(sys.modules, module, raising=False)

    return add


def list_plugins(capsys, *args):
    """``tap list-plugins`` in-process: (exit status, stdout)."""
    status = tap.cli.main(["list-plugins", *args])
    return status, capsys.readouterr().out


def infos_by_name():
    return {info.name: info for info in tap.plugins.plugin_infos()}


def test_broken_plugin_is_listed_with_its_error_and_the_rest_work(install, capsys):
    install("tap-broken", "tap_broken_plugin", BROKEN)
    install("tap-halving", "tap_halving_plugin", GOOD)
    with pytest.warns(UserWarning, match="'tap_broken_plugin' from tap-broken failed to load"):
        tap.plugins.reload()
    status, out = list_plugins(capsys, "--json")
    assert status == 1
    plugins = {p["name"]: p for p in json.loads(out)}
    assert plugins["tap_broken_plugin"]["error"] == "ImportError: this plugin is broken on purpose"
    assert plugins["tap_broken_plugin"]["distribution"] == "tap-broken"
    assert plugins["tap_halving_plugin"]["registered"] == {"predictor": ["halving"]}
    assert plugins["tap_halving_plugin"]["version"] == "1.0"
    assert set(plugins["predictors"]["registered"]["predictor"]) == {"reuse", "taylor", "taylorseer", "hermite"}
    assert tap.plugins.registry().get("predictor", "halving").plugin == "tap_halving_plugin"

    status, table = list_plugins(capsys)
    assert status == 1
    assert "ERROR ImportError: this plugin is broken on purpose" in table
    assert "predictor: halving" in table
    assert "\nwan " in table and "WanTransformer3DModel" in table and "transformer classes" in table
    assert plugins["adapters"]["covers"]["wan"] == ["WanTransformer3DModel"]


def test_a_plugin_exiting_at_import_is_reported_like_an_import_error(install, capsys):
    install("tap-exits", "tap_exits_plugin", "raise SystemExit(3)\n")
    with pytest.warns(UserWarning, match="SystemExit: 3"):
        tap.plugins.reload()
    assert infos_by_name()["tap_exits_plugin"].error == "SystemExit: 3"
    assert "taylor" in tap.predictor_names()
    assert list_plugins(capsys)[0] == 1


HALF_REGISTERED = GOOD.replace("register(Halving)", "register(Halving)\n        raise RuntimeError('midway')")


def test_a_hook_raising_midway_registers_nothing_of_its_plugin(install):
    install("tap-midway", "tap_midway_plugin", HALF_REGISTERED)
    with pytest.warns(UserWarning, match="RuntimeError: midway"):
        tap.plugins.reload()
    info = infos_by_name()["tap_midway_plugin"]
    assert (info.error, info.registered) == ("RuntimeError: midway", {})
    assert "halving" not in tap.predictor_names()


@pytest.mark.parametrize(
    "hook, reported",
    [
        ("@tap.hookimpl\n    def register_predictor(register):", "unknown hook 'register_predictor'"),
        ("def register_predictors(register):", "function register_predictors() is not marked @tap.hookimpl"),
        ("def register_predictrs(register):", "function register_predictrs() is not a tap hook"),
    ],
    ids=["marked-but-misspelled", "unmarked", "unmarked-and-misspelled"],
)
def test_misspelled_hooks_are_reported(install, hook, reported):
    install("tap-typo", "tap_typo_plugin", GOOD.replace("@tap.hookimpl\n    def register_predictors(register):", hook))
    with pytest.warns(UserWarning, match="tap_typo_plugin"):
        tap.plugins.reload()
    info = infos_by_name()["tap_typo_plugin"]
    assert reported in info.error and info.registered == {}
    assert "halving" not in tap.predictor_names()


RIVAL = GOOD.replace("Halving", "OtherHalving").replace("register(OtherHalving)", "register(OtherHalving)\n        register(Quartering)") + """
    class Quartering(OtherHalving):
        name = "quartering"
"""


def test_a_name_conflict_is_listed_and_refused_only_where_the_name_is_used(install, capsys):
    install("tap-halving", "tap_halving_plugin", GOOD)
    install("tap-rival", "tap_rival_plugin", RIVAL)
    with pytest.warns(UserWarning, match="'halving' is registered twice"):
        tap.plugins.reload()
    status, out = list_plugins(capsys, "--json")
    plugins = {p["name"]: p for p in json.loads(out)}
    assert status == 1
    for name in ("tap_halving_plugin", "tap_rival_plugin"):
        [conflict] = plugins[name]["conflicts"]
        assert "'halving' is registered twice" in conflict and "by tap-halving (" in conflict and "by tap-rival (" in conflict
        assert plugins[name]["error"] is None
    assert "CONFLICT predictor name 'halving'" in list_plugins(capsys)[1]

    assert "quartering" in tap.predictor_names() and "halving" not in tap.predictor_names()
    tap.TAPConfig(predictor="quartering")  # the rival's other name works, and so does everything else
    for use in (lambda: tap.get_predictor("halving"), lambda: tap.TAPConfig(predictor="halving")):
        with pytest.raises(tap.PluginConflictError, match="by tap-halving .*and by tap-rival"):
            use()


def test_env_var_restricts_third_party_plugins(install, monkeypatch):
    install("tap-broken", "tap_broken_plugin", BROKEN)
    install("tap-halving", "tap_halving_plugin", GOOD)
    monkeypatch.setenv("TAP_LOAD_PLUGINS", "")
    tap.plugins.reload()
    assert {info.distribution for info in tap.plugins.plugin_infos()} == {"tap-diffusion"}
    monkeypatch.setenv("TAP_LOAD_PLUGINS", "tap-halving")
    tap.plugins.reload()
    assert {info.distribution for info in tap.plugins.plugin_infos()} == {"tap-diffusion", "tap-halving"}


def test_unknown_names_in_the_env_var_give_a_warning(monkeypatch):
    monkeypatch.setenv("TAP_LOAD_PLUGINS", "tap-halving,nonexistent")
    with pytest.warns(UserWarning, match=r"TAP_LOAD_PLUGINS names \['nonexistent', 'tap-halving'\], which no installed tap plugin has"):
        tap.plugins.reload()


def test_installed_plugins_all_load():
    """Holds with contrib/tap-lsq and tests/plugins/tap-odd installed, as CI does."""
    assert [(info.name, info.error, info.conflicts) for info in tap.plugins.plugin_infos() if info.error or info.conflicts] == []


def test_the_odd_test_plugin_works_when_installed():
    pytest.importorskip("tap_odd", reason="pip install -e tests/plugins/tap-odd")
    [info] = [info for info in tap.plugins.plugin_infos() if info.distribution == "tap-odd"]
    assert (info.name, info.registered) == ("odd-one", {"predictor": ("odd-mean", "blend"), "schedule": ("odd-every-third",)})
    assert "odd-blend" not in tap.predictor_names()
    config = tap.TAPConfig(predictor="blend", schedule="odd-every-third", schedule_options={"offset": 1}, horizons=(-1, 0))
    assert [c.label for c in config.family()] == ["odd-blend@-1", "odd-blend"]


def test_version_says_which_package_answered():
    result = subprocess.run([sys.executable, "-m", "tap", "--version"], capture_output=True, text=True, timeout=120)
    assert result.stdout.startswith("tap-diffusion ") and "module tap at" in result.stdout


def test_public_names_import_lazily_and_are_all_there():
    import tap as package

    assert all(getattr(package, name) is not None for name in package.__all__)
    from tap import TAPConfig, enable, predictor_names  # noqa: F401  (the names import as before)

    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        package.nonexistent
