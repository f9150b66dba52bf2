"""`tap generate` and `tap tune` end to end on the bundled demo model (few steps, to stay fast)."""

import json

import numpy as np
from PIL import Image

from conftest import run_tap, tap_cli
from tap.cli.bench import BenchSettings


def test_generate_json_summary_and_comparison_image(tmp_path):
    out = tmp_path / "compare.png"
    result = run_tap("generate", "--steps", "8", "--interval", "3", "--prompt", "B", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    for key in ("speedup", "psnr", "ssim", "full_seconds", "tap_seconds"):
        assert isinstance(summary[key], float), key
    assert summary["full_steps"] == 3 and summary["predicted_steps"] == 5  # steps 0, 3, 6 run in full
    assert summary["fallbacks"] == 0 and summary["context_parallel"] == 1 and summary["left_alone"] is None
    assert summary["full_step_rule"] == "a full step every 3 steps (interval=3)"
    assert 0 < summary["ssim"] <= 1
    width, height = Image.open(out).size
    assert width > 2 * height  # three panels side by side


def test_generate_no_compare_writes_the_tap_image_only(tmp_path):
    out = tmp_path / "tap.png"
    result = run_tap("generate", "--steps", "6", "--no-compare", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "speedup" not in result.stdout and "tap:" in result.stdout
    assert "full steps:   every step computed (left alone)" in result.stdout  # the default leaves a 6-step run alone
    assert "left alone:   a run of 6 steps is too short" in result.stdout
    assert np.asarray(Image.open(out)).shape == (64, 64)


def test_generate_refuses_bad_input_with_a_clear_message(tmp_path, capsys):
    code, _, err = tap_cli(capsys, "generate", "--interval", "0", "--out", str(tmp_path / "x.png"))
    assert code == 2 and "interval must be an int >= 1, got 0" in err
    code, _, err = tap_cli(capsys, "generate", "--model", str(tmp_path / "no-such-model"), "--steps", "2")
    assert code == 2 and "could not load pipeline" in err


def test_hub_models_load_through_diffusers_and_say_clearly_when_weights_are_absent():
    # The real loading path (DiffusionPipeline.from_pretrained) runs until the weights would be fetched.
    result = run_tap("generate", "--model", "Qwen/Qwen-Image", "--steps", "2", env={"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2
    assert "could not load pipeline 'Qwen/Qwen-Image'" in result.stderr and "not fully cached locally" in result.stderr


def test_tune_finds_a_config_saves_a_preset_and_resumes(tmp_path):
    from tap.cli.tune import Tuner

    settings = BenchSettings(prompts=("A",), seeds=(0,), steps=8, repeats=1, peers=False)
    journal = tmp_path / "journal.jsonl"
    stage_one = {"interval=2": dict(interval=2), "interval=4": dict(interval=4)}
    stage_two = {"fixed-reuse": dict(predictor="reuse", orders=(0,), selector="fixed"), "token-l2": dict(orders=(1, 2), distance="l2")}
    best = Tuner(settings, journal, target_speedup=3.0, target_psnr=None).run(stage_one, stage_two, keep=1, sweeps=0)
    assert best.speedup >= 3.0  # interval 4 of 8 steps: blocks run at steps 0 and 4 only
    lines = journal.read_text().splitlines()
    assert len(lines) == 4  # two schedules, then two selections on the best one
    again = Tuner(settings, journal, target_speedup=3.0, target_psnr=None)
    assert again.run(stage_one, stage_two, keep=1, sweeps=0) == best
    assert len(journal.read_text().splitlines()) == 4 and again.references is None  # resumed: nothing regenerated


def test_tune_refuses_negative_placement_sweeps(capsys):
    code, _, err = tap_cli(capsys, "tune", "--target-speedup", "2", "--placement-sweeps", "-1")
    assert code == 2 and "--placement-sweeps must be >= 0 (0 keeps the winner's schedule), got -1" in err


def test_tune_placement_moves_full_steps_without_adding_any(tmp_path):
    from tap.cli.tune import Tuner

    settings = BenchSettings(prompts=("A",), seeds=(0,), steps=10, repeats=1, peers=False)
    journal = tmp_path / "journal.jsonl"
    stage_one = {"interval=4": dict(interval=4)}
    stage_two = {"fixed-taylor-1": dict(orders=(1,), selector="fixed")}
    grid = Tuner(settings, journal, target_speedup=3.0, target_psnr=None).run(stage_one, stage_two, keep=1, sweeps=0)
    placed = Tuner(settings, journal, target_speedup=3.0, target_psnr=None).run(stage_one, stage_two, keep=1, sweeps=1)
    trials = [json.loads(line) for line in journal.read_text().splitlines()]
    placements = [t for t in trials if t["stage"] == "placement"]
    # First the DP plan for 3 full steps (tap plan), then one sweep from the better of plan and grid:
    # each of the two movable steps tries up to 4 neighbours (fewer at the end or where taken).
    assert placements[0]["label"].startswith("planned")
    assert 1 + 4 <= len(placements) <= 1 + 8
    assert {t["speedup"] for t in placements} == {grid.speedup}  # moved, never added
    assert all(len(t["config"]["schedule_options"]["steps"]) == 3 for t in placements)
    assert placed.psnr == max([grid.psnr, *(t["psnr"] for t in placements)])
    assert placed.config["schedule"] == "listed" and placed.config["schedule_options"]["num_steps"] == 10


def test_tune_command_writes_a_preset_that_generate_loads(tmp_path):
    preset = tmp_path / "tuned.json"
    # the wiring only: the placement stage has its own test (test_tune_placement_moves_full_steps_without_adding_any)
    result = run_tap("tune", "--target-psnr", "1", "--prompts", "A", "--steps", "6", "--placement-sweeps", "0", "--out", str(preset),
                     timeout=600)
    assert result.returncode == 0, result.stderr
    assert preset.exists() and "saved preset" in result.stdout
    generated = run_tap("generate", "--steps", "6", "--preset", str(preset), "--no-compare", "--out", str(tmp_path / "x.png"))
    assert generated.returncode == 0, generated.stderr


def test_the_text_report_says_how_many_ranks_ran_and_what_else_happened():
    from tap.cli.generate import summary_text

    summary = dict(tap_seconds=1.0, full_steps=9, predicted_steps=41, blocks_avoided=0.82, full_step_rule="a full step every 6 steps",
                   left_alone=None, context_parallel=2, fallbacks=1, restarts=1, image="tap-generate.png")
    text = summary_text(summary, "image")
    assert "ranks:        2 (context parallelism)" in text
    assert "fallbacks:    1 predicted steps" in text and "restarts:     1" in text
    assert "full steps:   a full step every 6 steps" in text and text.endswith("image:        tap-generate.png")
    alone = summary_text({**summary, "context_parallel": 1, "fallbacks": 0, "restarts": 0, "left_alone": "a run of 8 steps"}, "image")
    assert "ranks" not in alone and "fallbacks" not in alone and "left alone:   a run of 8 steps" in alone
