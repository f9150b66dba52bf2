"""`tap tune`: the search on the bundled demo model (few steps, to stay fast) and the command's wiring."""

import json

from conftest import tap_cli
from tap.cli.bench import BenchSettings


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


def test_tune_command_writes_a_preset_that_generate_loads(tmp_path, capsys, monkeypatch):
    from tap.cli import tune

    # the wiring only, on a search space of one trial per stage: the search has its own tests above
    monkeypatch.setattr(tune, "schedules", lambda: {"interval=3": dict(interval=3)})
    monkeypatch.setattr(tune, "selections", lambda: {"fixed-taylor-1": dict(orders=(1,), selector="fixed")})
    preset = tmp_path / "tuned.json"
    code, out, err = tap_cli(capsys, "tune", "--target-psnr", "1", "--prompts", "A", "--steps", "6", "--placement-sweeps", "0",
                             "--out", str(preset))
    assert code == 0, err
    assert preset.exists() and "saved preset" in out and out.startswith("best: ")
    assert len((tmp_path / "tuned.journal.jsonl").read_text().splitlines()) == 2  # one trial per stage
    code, _, err = tap_cli(capsys, "generate", "--steps", "6", "--preset", str(preset), "--no-compare", "--out", str(tmp_path / "x.png"))
    assert code == 0, err
