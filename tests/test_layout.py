"""The layout: the library (tap/ outside tap/cli/) never imports the user tools or scikit-image."""

from __future__ import annotations

import ast
from pathlib import Path

TAP = Path(__file__).resolve().parents[1] / "tap"
# doors into the tools: ``python -m tap`` runs the CLI, tap.launch is the documented path of tap.cli.launch
DOORS = (TAP / "__main__.py", TAP / "launch.py")


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_imported_modules_sees_nested_and_from_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import a.b\nfrom c import d\ndef f():\n    from tap import cli\n")
    assert {"a.b", "c", "c.d", "tap", "tap.cli"} <= imported_modules(source)


def test_the_library_never_imports_the_tools():
    library = [path for path in sorted(TAP.rglob("*.py")) if TAP / "cli" not in path.parents and path not in DOORS]
    assert TAP / "planning.py" in library and TAP / "runtime.py" in library
    wrong = {
        str(path.relative_to(TAP.parent)): sorted(m for m in imported_modules(path) if m.split(".")[0] == "skimage" or m.startswith("tap.cli"))
        for path in library
    }
    assert not {path: modules for path, modules in wrong.items() if modules}


def test_the_contributor_guide_names_every_module():
    guide = (TAP.parent / "docs" / "contributing.md").read_text()
    modules = [path for path in sorted(TAP.rglob("*.py")) if path.name not in ("__init__.py", "__main__.py")]
    assert [str(p.relative_to(TAP)) for p in modules if f"`{p.name}`" not in guide] == []
