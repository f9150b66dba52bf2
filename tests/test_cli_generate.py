"""`tap generate` end to end on the bundled demo model (few steps, to stay fast)."""

import json

import numpy as np
from PIL import Image

from conftest import run_tap, tap_cli


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


def test_generate_no_compare_writes_the_tap_image_only(tmp_path, capsys):
    out = tmp_path / "tap.png"
    code, stdout, err = tap_cli(capsys, "generate", "--steps", "6", "--no-compare", "--out", str(out))
    assert code == 0, err
    assert "speedup" not in stdout and "tap:" in stdout
    assert "full steps:   every step computed (left alone)" in stdout  # the default leaves a 6-step run alone
    assert "left alone:   a run of 6 steps is too short" in stdout
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
