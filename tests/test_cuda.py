"""The runtime on a CUDA device in bfloat16: exact at interval 1, no block on predicted steps, selection runs.

Skipped where no CUDA device is present (CI); run on a GPU machine with ``python -m pytest tests/test_cuda.py``.
"""

import pytest
import torch

import tap
from tap.cli.bench import BlockCounter
from tap_plugins.demo import load_demo_pipeline

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

STEPS = 12


@pytest.fixture(scope="module")
def pipe():
    pipe = load_demo_pipeline("cuda", torch.bfloat16)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sample(pipe, prompt="A", seed=0):
    generator = torch.Generator("cpu").manual_seed(seed)
    return pipe(prompt, num_inference_steps=STEPS, guidance_scale=3.0, generator=generator, output_type="pt").images


def test_interval_one_is_bit_identical_to_diffusers_in_bfloat16(pipe):
    reference = sample(pipe)
    with tap.accelerate(pipe, interval=1):
        accelerated = sample(pipe)
    assert torch.equal(reference, accelerated)


def test_predicted_steps_run_no_block_in_bfloat16(pipe):
    blocks = list(pipe.transformer.transformer_blocks) + list(pipe.transformer.single_transformer_blocks)
    counter = BlockCounter({pipe.transformer: blocks})
    try:
        with tap.accelerate(pipe, interval=4) as handle:
            images = sample(pipe)
            stats = handle.stats()
    finally:
        counter.remove()
    # 3 full steps (0, 4, 8) of 12, each in one batched cond+uncond call per step.
    assert (stats.full_steps, stats.predicted_steps) == (3, 9)
    assert counter.calls == 3 * len(blocks)
    assert torch.isfinite(images).all() and images.device.type == "cuda"
    assert stats.cache_bytes > 0


def test_per_token_selection_runs_on_the_device(pipe):
    with tap.accelerate(pipe, preset="token", interval=4) as handle:
        images = sample(pipe)
        stats = handle.stats()
    assert torch.isfinite(images).all()
    assert sum(stats.candidate_share.values()) == pytest.approx(1.0)
