"""The pipelines of the DiT families under tap: text-to-image and video, and the variants people use
for more (image-to-image, inpainting, editing with reference-image tokens, ControlNet,
image-to-video, VACE), each a tiny pipeline built locally (``tests/pipeline_zoo``).

Per pipeline, called as a user calls it (most set no cache context): with every step computed the
output equals the pipeline without tap; at interval 3 steps are predicted, every denoiser call
is counted as a step (also when ``strength < 1`` starts the run part-way), and the output stays
finite and close. Text-to-image and video pipelines also run through ``tap generate`` from a folder.
"""

from __future__ import annotations

import json

import pytest
import torch

import pipeline_zoo
import tap
from tap.cli import main
from tiny_pipelines import save_pipeline
from zoo import FAR, relative

CASES = pipeline_zoo.cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_pipeline_under_tap(name):
    case = CASES[name]
    pipe = pipeline_zoo.build(case)
    plain = pipeline_zoo.generate(case, pipe)
    assert torch.isfinite(plain).all()

    with tap.accelerate(pipe, interval=1) as handle:
        exact = pipeline_zoo.generate(case, pipe)
        stats = handle.stats()
    assert (stats.steps, stats.predicted_steps) == (case.calls, 0)
    torch.testing.assert_close(exact, plain, rtol=1e-5, atol=1e-5)

    with tap.accelerate(pipe, interval=3) as handle:
        fast = pipeline_zoo.generate(case, pipe)
        stats = handle.stats()
    assert stats.steps == case.calls and stats.predicted_steps > 0
    assert torch.isfinite(fast).all()
    assert relative(fast, plain) < FAR


@pytest.mark.parametrize("name", sorted(name for name, case in CASES.items() if case.saveable))
def test_tap_generate_runs_the_pipeline_from_a_folder(name, tmp_path, capsys):
    case = CASES[name]
    folder = save_pipeline(pipeline_zoo.build(case), tmp_path / "pipeline")
    out = tmp_path / ("out.gif" if "--frames" in case.generate_args else "out.png")
    assert main(["generate", "--model", str(folder), "--steps", "4", "--interval", "2", *case.generate_args,
                 "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["predicted_steps"] > 0 and out.exists()


def test_warmup_counts_from_the_first_step_of_a_partial_run():
    case = CASES["FluxImg2ImgPipeline"]  # strength 0.5 of 10 steps: the scheduler's steps 5 to 9
    pipe = pipeline_zoo.build(case)
    with tap.accelerate(pipe, warmup=3, interval=3) as handle:
        pipeline_zoo.generate(case, pipe)
        stats = handle.stats()
    assert (stats.steps, stats.full_steps, stats.predicted_steps) == (5, 3, 2)


def test_guidance_as_two_calls_without_a_cache_context_keeps_a_state_per_call():
    case = CASES["ChromaPipeline"]  # the conditional and the unconditional call of each step, no cache_context
    pipe = pipeline_zoo.build(case)
    with tap.accelerate(pipe, interval=3) as handle:
        pipeline_zoo.generate(case, pipe)
        stats = handle.stats()
        states = handle.denoisers["transformer"].runtime.states.states()
    assert stats.contexts == ("default", "default/call 2") and stats.steps == case.calls
    assert [(state.counters.steps, state.counters.predicted_steps > 0) for state in states.values()] == [(case.calls // 2, True)] * 2


@pytest.mark.parametrize("name", ["StableDiffusion3Pipeline", "LTXPipeline"])
def test_tap_bench_runs_an_image_and_a_video_pipeline_from_a_folder(name, tmp_path):
    case = CASES[name]
    folder = save_pipeline(pipeline_zoo.build(case), tmp_path / "pipeline")
    out = tmp_path / "bench"
    assert main(["bench", "--model", str(folder), "--quick", "--no-peers", "--steps", "4", "--intervals", "2",
                 "--prompts", "a cat", *case.generate_args, "--out", str(out)]) == 0
    records = json.loads((out / "bench.json").read_text())["records"]
    assert records and all(record["error"] is None for record in records), [r for r in records if r["error"]]
    assert {record["method"] for record in records} >= {"tap-default"}


def test_stats_print_once_with_the_blocks_avoided_and_each_expert_on_a_line():
    case = CASES["WanPipeline-two-experts"]
    pipe = pipeline_zoo.build(case)
    with tap.accelerate(pipe, interval=3) as handle:
        pipeline_zoo.generate(case, pipe)
        stats = handle.stats()
    text = str(stats)
    assert text.startswith(f"tap: {stats.steps} steps ({stats.full_steps} full, {stats.predicted_steps} predicted), ")
    assert f"{100 * stats.blocks_avoided:.1f}% of block evaluations avoided" in text
    assert [line.split(":")[0].strip() for line in text.splitlines()[1:]] == ["transformer", "transformer_2"]
    assert text.count("block evaluations avoided") == 3  # the total, then one line per expert: nothing repeated
