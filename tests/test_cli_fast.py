"""The quick commands stay quick: ``tap --help`` and ``--version`` import no torch, and ``tap list-plugins``
imports no diffusers, yet still lists every adapter with the transformer classes it covers.

Each command runs as ``python -m tap`` in a fresh interpreter, which then reports what it imported.
"""

import json
import subprocess
import sys

import pytest

from tap_plugins.adapters import ADAPTERS

RUN_AS_TAP = """\
import contextlib, io, json, runpy, sys
sys.argv = ["tap", *sys.argv[1:]]
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        runpy.run_module("tap", run_name="__main__")
    except SystemExit:
        pass
print(json.dumps({"stdout": out.getvalue(), "imported": sorted({m.split(".")[0] for m in sys.modules} & {"torch", "diffusers"})}))
"""


def run_as_tap(*argv: str) -> dict:
    """``python -m tap *argv`` in a subprocess: its stdout and which of torch and diffusers it imported."""
    result = subprocess.run(
        [sys.executable, "-c", RUN_AS_TAP, *argv], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("argument", ["--help", "--version"])
def test_help_and_version_import_no_torch(argument):
    run = run_as_tap(argument)
    assert run["stdout"].startswith("usage: tap" if argument == "--help" else "tap-diffusion ")
    assert run["imported"] == []


@pytest.fixture(scope="module")
def listing():
    return run_as_tap("list-plugins", "--json")


def test_listing_plugins_imports_no_diffusers(listing):
    assert "diffusers" not in listing["imported"]


def test_the_json_listing_has_every_adapter_with_the_classes_it_covers(listing):
    [adapters] = [info for info in json.loads(listing["stdout"]) if info["name"] == "adapters"]
    assert adapters["error"] is None
    assert adapters["covers"] == {cls.name: list(cls.transformer_classes) for cls in ADAPTERS}
    assert all(adapters["covers"].values())
