"""`tap bench` on the bundled demo model (few steps, to stay fast): what it records, how it times, what it
flags, where the peers' output goes, and what it leaves as it was."""

import argparse
import json
import logging
import statistics
import sys

import pytest
import torch

import tap
from conftest import tap_cli
from tap.cli.bench import QUICK_METHODS, Bench, BenchSettings, Record, add_bench_command
from tap.cli.peers import METHOD_NAMES, Method
from tap.cli.report import NOISE_NOTE, markdown_table, write_json


def tap_only(**overrides) -> BenchSettings:
    """Two tap presets at interval 4 of 8 steps, one sample, no peers and no profiling: a bench in seconds."""
    base = dict(prompts=("A",), seeds=(0,), steps=8, intervals=(4,), refresh=(), peers=False, profile=False,
                methods=("tap-fora", "tap-taylorseer"))
    return BenchSettings(**{**base, **overrides})


def test_bench_records_every_method_with_quality_and_counts():
    settings = BenchSettings(prompts=("A",), seeds=(0,), steps=8, repeats=1, intervals=(4,), refresh=(0.1,), fbcache=(0.2,), magcache=(0.2,),
                             pab=(), fastercache=(), cache_dit=())
    records = Bench.load(settings, progress=False).run()
    by_name = {(r.method, r.setting): r for r in records}
    assert all(r.error is None for r in records), [r for r in records if r.error]
    assert {r.method for r in records} - {"full"} <= set(METHOD_NAMES)  # what --methods accepts names what runs
    full = by_name[("full", "-")]
    assert full.compute_ratio == 1.0 and full.speedup == pytest.approx(1.0)
    fora = by_name[("tap-fora", "interval=4")]
    assert fora.compute_ratio == pytest.approx(2 / 8)  # steps 0 and 4 of 8 run the stack
    assert fora.cache_bytes > 0 and full.cache_bytes == 0 and fora.psnr is not None and 0 < fora.ssim <= 1
    assert {"diffusers-taylorseer", "diffusers-fbcache", "diffusers-magcache"} <= {r.method for r in records}
    assert fora.full_steps == 2 and full.full_steps == 8
    assert "| tap-default | interval=4 | 2.0 |" in markdown_table(records)
    # Peers' full steps are counted the same way: steps in which every block ran.
    lite = by_name[("diffusers-taylorseer-lite", "interval=4")]
    assert lite.full_steps == pytest.approx(lite.compute_ratio * 8) and lite.full_steps < 8


def test_bench_says_clearly_when_the_model_cannot_be_loaded(tmp_path, capsys):
    # the hub's loading path, weights absent, is tested once, on tap generate (test_cli_generate.py)
    code, _, err = tap_cli(capsys, "bench", "--model", str(tmp_path / "no-such-model"), "--steps", "2")
    assert code == 2 and f"could not load pipeline '{tmp_path / 'no-such-model'}'" in err


def test_quick_keeps_three_timing_rounds_and_states_its_time():
    assert BenchSettings().repeats >= 3 and BenchSettings.quick().repeats >= 3
    assert not BenchSettings.quick().profile and set(BenchSettings.quick().methods) == set(QUICK_METHODS)
    commands = argparse.ArgumentParser().add_subparsers()
    add_bench_command(commands)
    bench_help = " ".join(commands.choices["bench"].format_help().split())
    assert "under 5 minutes on 2 CPU cores" in bench_help


def test_unknown_method_names_are_refused_by_name():
    with pytest.raises(tap.ConfigError, match="unknown method 'tap-nope'"):
        BenchSettings(methods=("tap-fora", "tap-nope"))


def test_rounds_are_interleaved_and_every_round_is_recorded(tmp_path):
    bench = Bench.load(tap_only(repeats=3), progress=False)
    order, measure = [], bench.measure
    bench.measure = lambda method: order.append(method.name) or measure(method)
    records = bench.run()
    assert order == ["full", "tap-fora", "tap-taylorseer", "tap-fora", "tap-taylorseer", "full", "tap-taylorseer", "full", "tap-fora"]
    for record in records:
        assert len(record.round_seconds) == 3 and record.seconds == statistics.median(record.round_seconds)
    write_json(records, tmp_path / "bench.json", {})
    rows = json.loads((tmp_path / "bench.json").read_text())["records"]
    assert [row["round_seconds"] for row in rows] == [record.round_seconds for record in records]


def test_a_speedup_beyond_what_the_skipped_blocks_allow_is_flagged_as_noise(tmp_path):
    plausible = Record("tap-default", "interval=6", "tap", speedup=5.5, compute_ratio=0.18, steps=50)  # at most 1.1 / 0.18 = 6.1x
    noisy = Record("tap-fora", "interval=6", "tap", speedup=13.12, compute_ratio=0.18, steps=50)
    assert not plausible.speedup_noise and noisy.speedup_noise
    table = markdown_table([plausible, noisy])
    assert "| 5.50x |" in table and "| 13.12x* |" in table and table.rstrip().endswith(NOISE_NOTE)
    assert NOISE_NOTE not in markdown_table([plausible])
    write_json([plausible, noisy], tmp_path / "bench.json", {})
    rows = json.loads((tmp_path / "bench.json").read_text())["records"]
    assert [row["speedup_noise"] for row in rows] == [False, True]


def test_grad_mode_is_left_as_it_was_and_generations_run_without_autograd():
    assert torch.is_grad_enabled()
    bench = Bench.load(tap_only(repeats=1), progress=False)
    assert torch.is_grad_enabled()
    during = []
    handle = bench.transformer.register_forward_pre_hook(lambda *_: during.append(torch.is_grad_enabled()))
    try:
        bench.run()
    finally:
        handle.remove()
    assert torch.is_grad_enabled() and during and not any(during)


def test_a_full_compute_failure_is_recorded_on_every_method(monkeypatch):
    def broken(pipe):
        raise RuntimeError("full compute broke")

    monkeypatch.setattr("tap.cli.bench.FULL", Method("full", "-", "reference", broken))
    bench = Bench.load(tap_only(repeats=3), progress=False)
    measured, measure = [], bench.measure
    bench.measure = lambda method: measured.append(method.name) or measure(method)
    records = bench.run()
    assert measured == ["full"]  # nothing else runs once there is nothing to compare with
    assert [r.error for r in records] == ["RuntimeError: full compute broke", *["full compute failed: RuntimeError: full compute broke"] * 2]
    assert markdown_table(records).count("error: ") == 3


def test_peers_log_to_the_log_file_and_their_loggers_are_restored(tmp_path, capsys):
    pytest.importorskip("cache_dit")
    loggers = {name: logger for name, logger in logging.Logger.manager.loggerDict.items()
               if isinstance(logger, logging.Logger) and name.lower().startswith("cache_dit")}
    before = {name: (list(logger.handlers), logger.propagate) for name, logger in loggers.items()}
    stdout, stderr, log = sys.stdout, sys.stderr, tmp_path / "peers.log"
    settings = tap_only(repeats=1, peers=True, methods=("cache-dit-dbcache",), cache_dit=(0.2,))
    records = Bench.load(settings, progress=False, peer_log=log).run()
    assert all(r.error is None for r in records), [r.error for r in records]
    assert "--- cache-dit-dbcache threshold=0.2" in log.read_text() and "[cache_dit." in log.read_text()
    captured = capsys.readouterr()
    assert "Cache-DiT" not in captured.out + captured.err and "cache_dit" not in captured.out + captured.err
    assert {name: (list(logger.handlers), logger.propagate) for name, logger in loggers.items()} == before
    assert (sys.stdout, sys.stderr) == (stdout, stderr)


def test_tap_bench_prints_the_table_and_sends_the_peers_output_to_peers_log(tmp_path, capfd):
    pytest.importorskip("cache_dit")
    out = tmp_path / "bench"
    code, stdout, err = tap_cli(capfd, "bench", "--quick", "--steps", "8", "--repeats", "1", "--methods", "cache-dit-dbcache", "--out", str(out))
    assert code == 0, err
    assert "| cache-dit-dbcache | threshold=0.2 |" in stdout and f"is in {out / 'peers.log'}" in stdout
    assert "Cache-DiT" not in stdout + err
    assert "Auto fill blocks_name" in (out / "peers.log").read_text()


def test_predictors_run_alone_and_selected_per_token_at_the_default_rule():
    # 20 steps: the default rule leaves runs of 16 steps or fewer computed in full (8 would predict nothing).
    settings = tap_only(steps=20, repeats=1, predictors=("foca", "spectrum"), methods=("tap-foca", "tap-spectrum", "tap-select"))
    records = Bench.load(settings, progress=False).run()
    by_name = {r.method: r for r in records}
    assert set(by_name) == {"full", "tap-foca", "tap-spectrum", "tap-select"}  # --methods filtering keeps them, drops the rest
    for name in ("tap-foca", "tap-spectrum", "tap-select"):
        record = by_name[name]
        assert record.error is None and record.setting == "full_steps=9" and record.family == "tap"
        assert record.full_steps == 10 and 10 < record.psnr < 100 and 0 < record.ssim <= 1  # 0, 2, ..., 18 of 20
    assert BenchSettings(predictors=("foca",), methods=("tap-foca",)).wants("tap-foca")
    with pytest.raises(tap.ConfigError, match="unknown method 'tap-select'"):  # tap-select needs two predictors
        BenchSettings(predictors=("foca",), methods=("tap-select",))
    with pytest.raises(tap.TAPError, match="unknown predictor 'nope'; registered predictors: .*foca.*spectrum"):
        BenchSettings(predictors=("foca", "nope"))
