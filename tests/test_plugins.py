"""Plugin discovery and registration: run-time registration, conflicts, broken plugins, the env switch, the CLI."""

import json
import os
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
    with pytest.raises(tap.UnknownNameError, match="unknown predictor 'doubling'; registered predictors: hermite"):
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


def test_registering_the_wrong_kind_is_refused():
    with pytest.raises(TypeError, match="must be a subclass of tap.Predictor"):
        tap.register_predictor(int)


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


def run_tap(root, *args, env=None):
    environment = {**os.environ, "PYTHONPATH": str(root), **(env or {})}
    return subprocess.run([sys.executable, "-m", "tap", *args], capture_output=True, text=True, env=environment, timeout=120)


def test_broken_plugin_is_listed_with_its_error_and_the_rest_work(tmp_path):
    make_distribution(tmp_path, "tap-broken", "tap_broken_plugin", BROKEN)
    make_distribution(tmp_path, "tap-halving", "tap_halving_plugin", GOOD)
    result = run_tap(tmp_path, "list-plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["tap_broken_plugin"]["error"] == "ImportError: this plugin is broken on purpose"
    assert plugins["tap_broken_plugin"]["distribution"] == "tap-broken"
    assert plugins["tap_halving_plugin"]["registered"] == {"predictor": ["halving"]}
    assert plugins["tap_halving_plugin"]["version"] == "1.0"
    assert set(plugins["predictors"]["registered"]["predictor"]) == {"reuse", "taylor", "taylorseer", "hermite"}
    assert "failed to load" in result.stderr  # the warning

    table = run_tap(tmp_path, "list-plugins")
    assert "ERROR ImportError: this plugin is broken on purpose" in table.stdout
    assert "predictor: halving" in table.stdout


def test_env_var_restricts_third_party_plugins(tmp_path):
    make_distribution(tmp_path, "tap-broken", "tap_broken_plugin", BROKEN)
    make_distribution(tmp_path, "tap-halving", "tap_halving_plugin", GOOD)
    only_builtins = json.loads(run_tap(tmp_path, "list-plugins", "--json", env={"TAP_LOAD_PLUGINS": ""}).stdout)
    assert {p["distribution"] for p in only_builtins} == {"tap-diffusion"}
    chosen = json.loads(run_tap(tmp_path, "list-plugins", "--json", env={"TAP_LOAD_PLUGINS": "tap-halving"}).stdout)
    assert {p["distribution"] for p in chosen} == {"tap-diffusion", "tap-halving"}


def test_two_plugins_with_one_name_is_an_error_naming_both(tmp_path):
    make_distribution(tmp_path, "tap-halving", "tap_halving_plugin", GOOD)
    make_distribution(tmp_path, "tap-halving-copy", "tap_halving_copy", GOOD)
    result = run_tap(tmp_path, "list-plugins", "--json", env={"TAP_LOAD_PLUGINS": "tap-halving,tap-halving-copy"})
    assert result.returncode != 0
    assert "'halving' is registered twice" in result.stderr
    assert "tap-halving " in result.stderr.replace("(", " ") and "tap-halving-copy" in result.stderr


def test_version_says_which_package_answered():
    result = subprocess.run([sys.executable, "-m", "tap", "--version"], capture_output=True, text=True, timeout=120)
    assert result.stdout.startswith("tap-diffusion ") and "module tap at" in result.stdout
