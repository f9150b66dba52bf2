"""The ``tap`` command line: ``tap list-plugins``, ``tap generate``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import tap
from tap.plugins import BUILTIN_DISTRIBUTION, plugin_infos


def version_line() -> str:
    """Which package answered: ``tap`` is also the module name of typed-argument-parser."""
    return f"{BUILTIN_DISTRIBUTION} {tap.__version__} (module tap at {Path(tap.__file__).parent})"


def list_plugins(args: argparse.Namespace) -> int:
    infos = plugin_infos()
    if args.json:
        print(json.dumps([info.as_dict() for info in infos], indent=2))
        return 0
    rows = [("PLUGIN", "DISTRIBUTION", "VERSION", "REGISTERED")]
    for info in infos:
        registered = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in sorted(info.registered.items()))
        rows.append((info.name, info.distribution, info.version, f"ERROR {info.error}" if info.error else registered or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tap", description="Token-Adaptive Predictor acceleration for diffusion transformers.")
    parser.add_argument("--version", action="version", version=version_line())
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list-plugins", help="show installed plugins and what they registered")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(run=list_plugins)

    from tap.bench import add_bench_command
    from tap.generate import add_generate_command
    from tap.tune import add_tune_command

    add_generate_command(commands)
    add_bench_command(commands)
    add_tune_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.run(args)
    except tap.TAPError as error:
        print(f"tap: error: {error}", file=sys.stderr)
        return 2
