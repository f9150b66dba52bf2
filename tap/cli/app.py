"""The ``tap`` command line: ``tap list-plugins``, ``tap generate``, ``tap bench``, ``tap tune``, ``tap plan``."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

import tap

# Commands whose modules import torch: (module, function adding the command's parser, help).
# Only the command being run is imported, so ``tap --version`` and ``tap --help`` answer at once.
COMMANDS = {
    "generate": ("tap.cli.generate", "add_generate_command", "generate with full compute and with tap, and compare"),
    "bench": ("tap.cli.bench", "add_bench_command", "tap against diffusers' cache hooks and cache-dit, side by side"),
    "tune": ("tap.cli.tune", "add_tune_command", "search tap's configuration for a speed or quality target on your model"),
    "plan": ("tap.cli.plan", "add_plan_command", "place the full steps for a model and step count from calibration generations"),
}


def version_line() -> str:
    """Which package answered: ``tap`` is also the module name of typed-argument-parser."""
    return f"{tap.__distribution__} {tap.__version__} (module tap at {Path(tap.__file__).parent})"


def list_plugins(args: argparse.Namespace) -> int:
    """Show every plugin, its error or conflicts; exit 1 when any plugin failed or conflicts."""
    from tap.plugins import plugin_infos

    infos = plugin_infos()
    failed = any(info.error or info.conflicts for info in infos)
    if args.json:
        print(json.dumps([info.as_dict() for info in infos], indent=2))
        return int(failed)
    rows = [("PLUGIN", "DISTRIBUTION", "VERSION", "REGISTERED")]
    for info in infos:
        registered = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in sorted(info.registered.items()))
        notes = [f"ERROR {info.error}" if info.error else registered or "-", *(f"CONFLICT {c}" for c in info.conflicts)]
        rows.append((info.name, info.distribution, info.version, "; ".join(notes)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
    covers = {name: classes for info in infos for name, classes in info.covers.items()}
    if covers:
        width = max(map(len, covers))
        print(f"\n{'ADAPTER'.ljust(width)}  TRANSFORMER CLASSES")
        for name, classes in sorted(covers.items()):
            print(f"{name.ljust(width)}  {', '.join(classes)}")
        print(f"{len(covers)} adapters cover {len({c for classes in covers.values() for c in classes})} transformer classes; "
              "any other DiT is tried by discovery (docs/adapters.md)")
    return int(failed)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, with the full options of ``command`` only (the other commands are named, not imported)."""
    parser = argparse.ArgumentParser(prog="tap", description="Token-Adaptive Predictor acceleration for diffusion transformers.")
    parser.add_argument("--version", action="version", version=version_line())
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list-plugins", help="show installed plugins and what they registered")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(run=list_plugins)

    for name, (module, function, help_text) in COMMANDS.items():
        if name == command:
            getattr(importlib.import_module(module), function)(commands)
        else:
            commands.add_parser(name, help=help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    args.argv = argv
    try:
        return args.run(args)
    except tap.TAPError as error:
        print(f"tap: error: {error}", file=sys.stderr)
        return 2
