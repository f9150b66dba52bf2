"""docs/plugins.md stays true: one section per hook with its real signature, and every example runs.

In the spirit of datasette's tests/test_docs.py: the guide is checked against tap.hookspecs, so
adding, renaming or changing a hook fails here until the guide follows. The other guides are
checked for examples a user can run: none imports from tests/, and docs/video.md's tiny Wan builds.
"""

import inspect
import re
from pathlib import Path

import pytest
import torch

from tap import hookspecs, testing

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
TEXT = GUIDE.read_text()
# "### register_predictors(register)": a level-3 heading shaped like a call documents a hook.
HOOK_HEADING = re.compile(r"^### (\w+)(\(.*\))\s*$", re.MULTILINE)
CODE_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)

HOOKSPECS = {
    name: function
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(function, f"{hookspecs.hookspec.project_name}_spec")
}
DOCUMENTED = {match[1]: match[2] for match in HOOK_HEADING.finditer(TEXT)}


def hook_section(name: str) -> str:
    """The text under a hook's heading, up to the next heading of level 1 to 3."""
    start = TEXT.index(f"### {name}(")
    end = re.compile(r"^#{1,3} ", re.MULTILINE).search(TEXT, start + 1)
    return TEXT[start : end.start() if end else len(TEXT)]


def test_hookspecs_are_found():
    """Guards the checks below against passing vacuously if the marker lookup breaks."""
    assert {"register_predictors", "register_adapters"} <= set(HOOKSPECS)


@pytest.mark.parametrize("name", sorted(HOOKSPECS))
def test_hook_is_documented_with_its_signature(name):
    assert name in DOCUMENTED, f"docs/plugins.md has no '### {name}(...)' section"
    assert DOCUMENTED[name] == str(inspect.signature(HOOKSPECS[name]))


@pytest.mark.parametrize("name", sorted(HOOKSPECS))
def test_hook_section_has_an_example(name):
    assert "```python" in hook_section(name)


def test_no_documented_hook_is_missing_from_hookspecs():
    assert sorted(set(DOCUMENTED) - set(HOOKSPECS)) == []


@pytest.mark.parametrize("kind", ["predictor", "probe", "distance", "selector", "schedule"])
def test_every_plugin_check_is_documented_with_its_signature(kind):
    """``tap.testing.check_<kind>`` exists and the guide shows its exact parameters."""
    parameters = inspect.signature(getattr(testing, f"check_{kind}")).parameters.values()
    shown = ", ".join(p.name if p.default is p.empty else f"{p.name}={p.default!r}" for p in parameters)
    assert f"check_{kind}({shown})" in TEXT, f"docs/plugins.md does not show check_{kind}({shown})"


def code_blocks() -> list:
    """One pytest param per ```python block: (its first line in the guide, its code)."""
    blocks = []
    for match in CODE_BLOCK.finditer(TEXT):
        line = TEXT.count("\n", 0, match.start(1)) + 1
        blocks.append(pytest.param(line, match[1], id=f"plugins.md:{line}"))
    return blocks


@pytest.mark.parametrize("line, code", code_blocks())
def test_code_block_runs(line, code):
    """Each block runs alone in a fresh namespace; the autouse ``fresh_plugins`` fixture drops its registrations.

    The code is shifted to its line in the guide, so a traceback points into docs/plugins.md.
    """
    exec(compile("\n" * (line - 1) + code, str(GUIDE), "exec"), {"__name__": "docs_example"})


DOCS = GUIDE.parent


@pytest.mark.parametrize("page", sorted(path.name for path in DOCS.glob("*.md")))
def test_no_page_imports_from_the_tests(page):
    """A user's install has no tests/ folder: the guides' commands and examples must not need it."""
    text = (DOCS / page).read_text()
    for needle in ("sys.path.insert(0, 'tests')", 'sys.path.insert(0, "tests")', "from tiny_pipelines", "from conftest"):
        assert needle not in text, f"docs/{page} imports from tests/ ({needle})"


def test_video_guide_builds_the_tiny_wan(tmp_path, monkeypatch):
    """docs/video.md's script writes a pipeline that loads, with the transformer the tests use."""
    from diffusers import WanPipeline

    from tiny_pipelines import tiny_wan_pipeline

    guide = DOCS / "video.md"
    text = guide.read_text()
    match = CODE_BLOCK.search(text)
    monkeypatch.chdir(tmp_path)
    exec(compile("\n" * text.count("\n", 0, match.start(1)) + match[1], str(guide), "exec"), {"__name__": "docs_example"})
    loaded = WanPipeline.from_pretrained(tmp_path / "tiny-wan")
    expected = tiny_wan_pipeline().transformer.state_dict()
    assert all(torch.equal(value, expected[name]) for name, value in loaded.transformer.state_dict().items())


def test_the_readmes_configuration_table_lists_every_tapconfig_field():
    import attrs

    import tap

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("| field |", 1)[1].split("\n\n", 1)[0]
    documented = {name for row in table.splitlines() for name in re.findall(r"`(\w+)`", row.split("|")[1])}
    assert documented == {field.name for field in attrs.fields(tap.TAPConfig)}
