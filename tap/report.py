"""Bench output: JSON records, a Markdown table, and a Pareto plot of PSNR against speedup."""

from __future__ import annotations

import json
from pathlib import Path

import attrs


def write_json(records, path: Path, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": meta, "records": [attrs.asdict(r) for r in records]}, indent=2) + "\n")


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def markdown_table(records) -> str:
    """One row per method and setting, fastest first within a method."""
    lines = [
        "| method | setting | speedup | block evals | FLOPs | PSNR (dB) | SSIM | cache (MiB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        if r.error:
            lines.append(f"| {r.method} | {r.setting} | error: {r.error} | | | | | |")
            continue
        mib = None if r.cache_bytes is None else r.cache_bytes / 2**20
        lines.append(
            f"| {r.method} | {r.setting} | {_fmt(r.speedup, '.2f')}x | {_fmt(r.compute_ratio, '.3f')} | "
            f"{_fmt(r.flops_ratio, '.3f')} | {_fmt(r.psnr, '.2f')} | {_fmt(r.ssim, '.4f')} | {_fmt(mib, '.2f')} |"
        )
    return "\n".join(lines) + "\n"


def pareto_plot(records, path: Path, title: str) -> None:
    """PSNR against wall-clock speedup, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 5.5))
    methods = sorted({r.method for r in records if r.method != "full"})
    for method in methods:
        points = sorted((r.speedup, r.psnr) for r in records if r.method == method and r.speedup and r.psnr is not None)
        if points:
            style = "-o" if method.startswith("tap-") else "--s"
            axis.plot(*zip(*points), style, label=method, markersize=4)
    axis.set_xlabel("wall-clock speedup vs full compute")
    axis.set_ylabel("PSNR vs full compute (dB)")
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
