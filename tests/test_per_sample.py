"""Per-sample decisions in a batch: under a probe-driven schedule each prompt's image is the one it gets
alone, cond and uncond copies decide together, and only the samples that need it run the full stack."""

import pytest
import torch
from diffusers.utils import BaseOutput

import tap
from tap.samples import merge_outputs, sample_groups, split_call
from tap_plugins.demo import load_demo_pipeline

PROMPTS, STEPS = ["A", "g", "7"], 12
PROBE_REFRESH = dict(schedule="probe-refresh", schedule_options={"threshold": 0.2}, interval=3)


@pytest.fixture(scope="module")
def pipe():
    pipe = load_demo_pipeline()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate(pipe, prompts, seeds, steps=STEPS):
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    return pipe(prompts, num_inference_steps=steps, guidance_scale=3.0, generator=generators, output_type="pt").images


def first_block_batches(pipe):
    """The batch size of every call of the first block, recorded while the returned list lives."""
    batches = []
    handle = pipe.transformer.transformer_blocks[0].attn.register_forward_pre_hook(
        lambda module, args, kwargs: batches.append(kwargs["hidden_states"].shape[0]), with_kwargs=True
    )
    return batches, handle


def test_each_prompt_in_a_batch_gets_the_image_it_gets_alone(pipe):
    with tap.accelerate(pipe, **PROBE_REFRESH):
        batches, hook = first_block_batches(pipe)
        batch = generate(pipe, PROMPTS, range(3))
        hook.remove()
        stats = tap.stats(pipe)
        alone = torch.cat([generate(pipe, [prompt], [seed]) for seed, prompt in enumerate(PROMPTS)])
    torch.testing.assert_close(batch, alone, rtol=0, atol=1e-6)
    assert set(batches) == {2}, "one sample (its cond and uncond copies) per call of the blocks"
    assert len(batches) == stats.full_steps < STEPS * len(PROMPTS), "blocks ran only for the samples that needed it"
    assert len(stats.contexts) == len(PROMPTS)


def test_deciding_once_per_batch_is_an_option_and_depends_on_the_batch(pipe):
    prompts = [*PROMPTS, "R"]
    with tap.accelerate(pipe, per_sample=False, **PROBE_REFRESH):
        batches, hook = first_block_batches(pipe)
        batch = generate(pipe, prompts, range(4), steps=50)
        hook.remove()
        alone = generate(pipe, prompts[:1], [0], steps=50)
    assert set(batches) == {8}
    assert (batch[:1] - alone).abs().max() > 1e-2


def test_fixed_schedules_never_split_the_batch(pipe):
    with tap.accelerate(pipe, interval=3):
        batches, hook = first_block_batches(pipe)
        generate(pipe, PROMPTS, range(3))
        hook.remove()
    assert set(batches) == {6}


def test_groups_split_and_merge_back_in_order():
    latents = torch.randn(3, 4, 2)
    batch = torch.cat([latents, latents])  # cond and uncond copies of three samples
    groups = sample_groups(batch)
    assert [rows.tolist() for rows in groups] == [[0, 3], [1, 4], [2, 5]]
    ids = torch.zeros(6, 3)  # as many rows as the batch, yet shared by every sample
    args, kwargs = split_call((batch,), {"ids": ids, "t": torch.arange(6.0)}, groups[1], 6, shared=("ids",))
    assert torch.equal(args[0], batch[[1, 4]]) and kwargs["ids"] is ids and kwargs["t"].tolist() == [1.0, 4.0]
    order = torch.cat(groups).argsort()
    parts = [batch[rows] for rows in groups]
    assert torch.equal(merge_outputs(parts, order), batch)
    assert torch.equal(merge_outputs([(part,) for part in parts], order)[0], batch)

    class Output(BaseOutput):
        sample: torch.Tensor

    assert torch.equal(merge_outputs([Output(sample=part) for part in parts], order).sample, batch)
