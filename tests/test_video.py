"""`tap generate` and `tap bench` on a video pipeline: a tiny Wan saved to a folder (few steps, 5 frames of 16x16)."""

import contextlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

import tap
from tap.cli.bench import Bench, BenchSettings
from tap.cli import main
from tap.cli.metrics import psnr, ssim
from tap.psnr import PSNR_CAP
from tiny_pipelines import save_pipeline, tiny_wan_pipeline

VIDEO = ["--frames", "5", "--height", "16", "--width", "16", "--prompt", "a cat"]


@pytest.fixture(scope="module")
def wan(tmp_path_factory):
    return str(save_pipeline(tiny_wan_pipeline(), tmp_path_factory.mktemp("wan") / "pipeline"))


@pytest.fixture(autouse=True)
def grad_mode():
    """Bench disables autograd process-wide; give it back to the other tests."""
    enabled = torch.is_grad_enabled()
    yield
    torch.set_grad_enabled(enabled)


def generate_json(capsys, *args) -> dict:
    assert main(["generate", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_tiny_wan_pipeline_runs_fast_and_round_trips_through_a_folder(wan):
    from diffusers import DiffusionPipeline

    call = dict(num_inference_steps=6, num_frames=5, height=16, width=16, output_type="np")
    built = tiny_wan_pipeline()(["a cat"], generator=torch.Generator().manual_seed(0), **call).frames
    loaded = DiffusionPipeline.from_pretrained(wan)
    assert type(loaded).__name__ == "WanPipeline" and loaded.transformer_2 is None
    assert np.array_equal(loaded(["a cat"], generator=torch.Generator().manual_seed(0), **call).frames, built)
    assert built.shape == (1, 5, 16, 16, 3)
    experts = tiny_wan_pipeline(two_experts=True)
    assert experts.config.boundary_ratio == 0.5
    assert not torch.equal(experts.transformer.proj_out.weight, experts.transformer_2.proj_out.weight)


def test_quality_is_averaged_over_frames_and_an_image_is_one_frame():
    rng = np.random.default_rng(0)
    reference = rng.random((3, 16, 16, 3))
    video = np.clip(reference + rng.normal(0, [[[[0.01]]], [[[0.05]]], [[[0.1]]]], reference.shape), 0, 1)
    assert psnr(reference, video) == pytest.approx(np.mean([psnr(r, v) for r, v in zip(reference, video)]))
    assert ssim(reference, video) == pytest.approx(np.mean([ssim(r, v) for r, v in zip(reference, video)]))
    assert psnr(reference[0], video[0]) == psnr(reference[:1], video[:1])
    assert psnr(reference, reference) == float("inf") and ssim(reference, reference) == pytest.approx(1.0)
    video[1] = reference[1]  # one identical frame counts as the cap, not as infinity
    assert psnr(reference, video) == pytest.approx((psnr(reference[0], video[0]) + PSNR_CAP + psnr(reference[2], video[2])) / 3)


def test_generate_compares_a_video_frame_by_frame_in_an_animation(wan, tmp_path, capsys):
    out = tmp_path / "compare.gif"
    summary = generate_json(capsys, "--model", wan, "--steps", "6", "--interval", "3", *VIDEO, "--out", str(out))
    assert summary["frames"] == 5 and summary["video"] == str(out)
    assert summary["full_steps"] == 4 and summary["predicted_steps"] == 8  # steps 0 and 3, conditional and unconditional
    assert np.isfinite(summary["psnr"]) and 0 < summary["ssim"] < 1 and isinstance(summary["speedup"], float)
    animation = Image.open(out)
    assert animation.n_frames == 5 and animation.size[0] > 2 * animation.size[1]  # three panels side by side


def test_generate_at_interval_one_matches_every_frame_exactly(wan, tmp_path, capsys):
    summary = generate_json(capsys, "--model", wan, "--steps", "4", "--interval", "1", *VIDEO, "--out", str(tmp_path / "x.gif"))
    assert summary["psnr"] == float("inf") and summary["ssim"] == pytest.approx(1.0) and summary["predicted_steps"] == 0


@pytest.mark.parametrize(("model", "extra", "written"), [("demo", [], "ro.png"), (None, VIDEO, "ro.gif")])
def test_generate_reports_the_path_it_wrote(wan, tmp_path, capsys, model, extra, written):
    summary = generate_json(capsys, "--model", model or wan, "--steps", "2", "--no-compare", *extra, "--out", str(tmp_path / "ro"))
    path = tmp_path / written
    assert summary.get("video", summary.get("image")) == str(path) and path.exists()
    assert Image.open(path).n_frames == summary["frames"] == (1 if model else 5)


def test_generate_fails_on_a_non_finite_tap_video(wan, tmp_path, capsys, monkeypatch):
    accelerate = tap.accelerate

    @contextlib.contextmanager
    def poisoned(pipe, config):
        """tap, and then a transformer whose output is NaN: what a broken prediction would produce."""
        with accelerate(pipe, config) as handle:
            hook = pipe.transformer.register_forward_hook(lambda module, args, output: (output[0] * float("nan"), *output[1:]))
            try:
                yield handle
            finally:
                hook.remove()

    monkeypatch.setattr(tap, "accelerate", poisoned)
    out = tmp_path / "x.gif"
    assert main(["generate", "--model", wan, "--steps", "2", *VIDEO, "--out", str(out), "--json"]) == 2
    assert "the tap output is not finite (100.0% of its values are NaN or inf)" in capsys.readouterr().err
    assert not out.exists()


def preset(tmp_path, **fields) -> str:
    """A preset file as ``tap tune`` writes them, with ``fields`` unchecked."""
    path = tmp_path / "preset.json"
    path.write_text(json.dumps({"tap_preset": 1, "config": fields}))
    return str(path)


REFUSED = {
    "bad schedule option": (lambda tmp: ["generate", "--preset", preset(tmp, schedule_options={"bogus": 1})], "{'bogus': 1}"),
    "listed for 10 steps": (lambda tmp: ["generate", "--steps", "6", "--preset", preset(tmp, schedule="listed", schedule_options={"steps": [0, 4], "num_steps": 10})],
                            "was made for num_inference_steps=10, but this generation has 6 steps"),
    "unwritable out": (lambda tmp: ["generate", "--out", str(tmp / "file" / "x.png")], "cannot write '{tmp}/file/x.png'"),
    "unknown out suffix": (lambda tmp: ["generate", "--out", str(tmp / "x.mp4")], "--out must end in .png, .gif, .webp"),
    "zero frames": (lambda tmp: ["generate", "--frames", "0"], "--frames must be >= 1, got 0"),
    "bench interval 0": (lambda tmp: ["bench", "--intervals", "0", "--out", str(tmp / "b")], "interval must be an int >= 1, got 0"),
    "bench unwritable out": (lambda tmp: ["bench", "--out", str(tmp / "file" / "b")], "cannot write"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_bad_input_fails_before_any_model_loads(case, tmp_path, capsys, monkeypatch):
    def never(*args, **kwargs):
        pytest.fail("the model was loaded before the input was validated")

    monkeypatch.setattr("tap.cli.generate.load_pipeline", never)
    monkeypatch.setattr("tap.cli.bench.load_pipeline", never)
    (tmp_path / "file").write_text("a file, not a folder")
    arguments, message = REFUSED[case]
    assert main(arguments(tmp_path)) == 2
    error = capsys.readouterr().err
    assert error.startswith("tap: error: ") and message.replace("{tmp}", str(tmp_path)) in error


def test_bench_runs_seacache_on_a_video_pipeline_only(wan, tmp_path, capsys):
    out = tmp_path / "bench"
    arguments = ["bench", "--model", wan, "--quick", "--steps", "6", "--intervals", "3", *VIDEO[:6], "--prompts", "a cat", "--out", str(out)]
    assert main(arguments) == 0
    document = json.loads((out / "bench.json").read_text())
    assert document["meta"]["settings"]["frames"] == 5
    records = {(r["method"], r["setting"]): r for r in document["records"]}
    assert all(r["error"] is None for r in records.values()), [r for r in records.values() if r["error"]]
    for setting in ("threshold=0.25", "threshold=1.0"):
        seacache = records[("diffusers-seacache", setting)]
        assert seacache["psnr"] > 0 and 0 < seacache["ssim"] <= 1 and 0 < seacache["compute_ratio"] <= 1
    assert records[("tap-default", "interval=3")]["compute_ratio"] == pytest.approx(2 / 6)  # steps 0 and 3 of 6
    image = Bench.load(BenchSettings.quick(model="demo", magcache=(), cache_dit=()), progress=False)
    assert "diffusers-seacache" not in {m.name for m in image.methods()}
    with pytest.raises(tap.TAPError, match="GlyphPipeline takes no num_frames"):
        Bench.load(BenchSettings(model="demo", frames=5))


def test_a_pipeline_that_calls_its_frame_count_frames_gets_it_under_that_name():
    from tap.cli.generate import call_options, is_video

    class FramesPipeline:  # Sana-Video's call names the frame count ``frames``
        def __call__(self, prompt, frames=81, height=480, width=832):
            pass

    assert is_video(FramesPipeline())
    assert call_options(FramesPipeline(), num_frames=5, height=None) == {"frames": 5}
    with pytest.raises(tap.TAPError, match="takes no guidance_scale"):
        call_options(FramesPipeline(), guidance_scale=3.0)
