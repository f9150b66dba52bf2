"""tap under diffusers' context parallelism (Ulysses, 2 ranks, gloo on CPU, spawned): every decision is
the same on each rank and the same as in one process, so the image equals single-process tap."""

import socket
import time

import pytest
import torch
import torch.multiprocessing as mp

import tap
from cp_worker import CONFIGS, generate, run
from tap_plugins.demo import load_demo_pipeline

WORLD, TIMEOUT = 2, 240  # seconds for the whole spawned run: a hang fails instead of blocking


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def parallel_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("cp") / "results.pt"
    context = mp.spawn(run, args=(WORLD, free_port(), str(out)), nprocs=WORLD, join=False)
    deadline = time.monotonic() + TIMEOUT
    try:
        while not context.join(timeout=5):
            if time.monotonic() > deadline:
                pytest.fail(f"the context-parallel run did not finish in {TIMEOUT} s")
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()
    return torch.load(out, weights_only=False)


@pytest.fixture(scope="module")
def single():
    pipe = load_demo_pipeline()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def single_process(pipe, config):
    with tap.accelerate(pipe, **config):
        return generate(pipe), tap.stats(pipe)


@pytest.mark.parametrize("name", [*CONFIGS, "probe-refresh-change", "probe-refresh-error", "global, tap first"])
def test_parallel_tap_equals_single_process_tap(parallel_results, single, name):
    config, image, stats = parallel_results[name]
    expected, expected_stats = single_process(single, config)
    torch.testing.assert_close(image, expected, rtol=0, atol=1e-4)
    assert (stats.full_steps, stats.predicted_steps) == (expected_stats.full_steps, expected_stats.predicted_steps)
    # over every rank's tokens; a few near-tied tokens may choose differently at float precision
    assert stats.candidate_share == pytest.approx(expected_stats.candidate_share, abs=2e-3)
    assert stats.cache_bytes * WORLD == expected_stats.cache_bytes, "each rank caches its own half of the tokens"


def test_probe_refresh_thresholds_straddle_the_ranks_own_signals(parallel_results):
    for signal in ("change", "error"):
        config, _, stats = parallel_results[f"probe-refresh-{signal}"]
        assert 0 < config["schedule_options"]["threshold"] < 1
        assert stats.full_steps < stats.steps


def test_disable_under_parallelism_restores_the_plain_parallel_model(parallel_results, single):
    _, full, _ = parallel_results["full"]
    _, after, _ = parallel_results["full after tap.disable"]
    torch.testing.assert_close(after, full, rtol=0, atol=0)
    torch.testing.assert_close(full, generate(single), rtol=0, atol=1e-4)


def test_a_schedule_that_decides_per_rank_cannot_hang_the_ranks(parallel_results):
    _, messages, stats = parallel_results["rank-dependent"]
    assert stats.full_steps == stats.steps, "where the ranks disagree, every rank computes in full"
    assert sum("decided differently on the context-parallel ranks" in m for m in messages) == 1
