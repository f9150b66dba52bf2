"""One rank of a context-parallel run of the demo pipeline (gloo, CPU), spawned by test_context_parallel.

Every configuration runs on a pipeline whose transformer was split with diffusers'
``enable_parallelism`` before tap was enabled; one more has tap enabled first. For the
probe-driven schedules, a first pass records each rank's own (unreduced) signal at the first
probed step, and the threshold is set between the mean over all tokens and the larger rank's value:
one process predicts that step, one rank alone would run it in full and the other would not.
"""

from __future__ import annotations

import warnings

import torch
import torch.distributed as dist

import tap
from tap.cli.launch import init_rank, split_tokens

STEPS, PROMPTS, GUIDANCE = 20, ["A", "g"], 3.0
CONFIGS = {
    "default": {},
    "token": dict(orders=(1, 2), selector="token"),
    "global": dict(orders=(1, 2), selector="global"),
    "smooth": dict(orders=(1, 2), selector="smooth", selector_options={"width": 16}),
}
SIGNALS = ("change", "error")


class RankDependent(tap.Schedule):
    """A careless probe-driven schedule: rank 0 wants every step in full, the others none."""

    name = "rank-dependent"
    uses_probe = True

    @classmethod
    def from_config(cls, config):
        return cls()

    def is_full(self, view):
        return dist.get_rank() == 0


def generate(pipe):
    return pipe(PROMPTS, num_inference_steps=STEPS, guidance_scale=GUIDANCE, generator=torch.Generator().manual_seed(0),
                output_type="pt").images


def straddling_threshold(pipe, signal: str) -> float:
    """Half-way between the mean over all tokens and the larger rank's own mean, at the first probed step."""
    from tap.parallel import TokenShards

    seen, mean = [], TokenShards.mean

    def recording(self, values):
        seen.append(float(values.mean()))
        return mean(self, values)

    TokenShards.mean = recording
    try:
        with tap.accelerate(pipe, schedule="probe-refresh", schedule_options={"signal": signal}, orders=(1, 2)):
            generate(pipe)
    finally:
        TokenShards.mean = mean
    firsts = [None] * dist.get_world_size()
    dist.all_gather_object(firsts, seen[0])
    assert firsts[0] != firsts[1], firsts
    overall = sum(firsts) / len(firsts)  # the ranks hold equal shares of the tokens
    return (overall + max(firsts)) / 2


def run(rank: int, world: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    init_rank(rank, world, "cpu", port)
    from tap_plugins.demo import load_demo_pipeline

    def parallel(pipe):
        split_tokens(pipe, world)

    pipe = load_demo_pipeline()
    pipe.set_progress_bar_config(disable=True)
    parallel(pipe)
    results = {"full": ({}, generate(pipe), None)}
    configs = dict(CONFIGS)
    for signal in SIGNALS:
        threshold = straddling_threshold(pipe, signal)
        configs[f"probe-refresh-{signal}"] = dict(
            schedule="probe-refresh", schedule_options={"signal": signal, "threshold": threshold}, orders=(1, 2)
        )
    for name, config in configs.items():
        with tap.accelerate(pipe, **config):
            results[name] = (config, generate(pipe), tap.stats(pipe))

    tap.register_schedule(RankDependent)
    with warnings.catch_warnings(record=True) as caught, tap.accelerate(pipe, schedule="rank-dependent"):
        warnings.simplefilter("always")
        generate(pipe)
        results["rank-dependent"] = ({}, [str(w.message) for w in caught], tap.stats(pipe))

    tap_first = load_demo_pipeline()
    tap_first.set_progress_bar_config(disable=True)
    tap.enable(tap_first, **CONFIGS["global"])
    parallel(tap_first)
    results["global, tap first"] = (CONFIGS["global"], generate(tap_first), tap.stats(tap_first))
    tap.disable(tap_first)
    results["full after tap.disable"] = ({}, generate(tap_first), None)
    if rank == 0:
        torch.save(results, out)
    dist.destroy_process_group()
