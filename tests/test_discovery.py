"""Discovery: take each class's adapter away and check that tap finds the same blocks and images, or says why not."""

from __future__ import annotations

import logging
import warnings

import pytest
import torch

import tap
import zoo
from tap.api import resolve_adapter
from tap.discovery import discover

DIT_CLASSES = zoo.dit_classes()
CASES = zoo.cases()


def sampled_with(adapter: type, case, model) -> torch.Tensor:
    tap.register_adapter(adapter)
    try:
        with tap.accelerate(model, interval=3, adapter=adapter.name):
            return zoo.sample(case, model)
    finally:
        tap.unregister_adapter(adapter.name)


@pytest.mark.parametrize("name", [name for name in DIT_CLASSES if name in CASES])
def test_discovery_finds_what_the_adapter_names_or_says_why_not(name, caplog):
    case = CASES[name]
    model = zoo.build(case)
    written = resolve_adapter(model, None)
    try:
        with caplog.at_level(logging.WARNING, logger="tap"):
            found = discover(model)
    except tap.UnsupportedModelError as error:
        assert name in str(error) and "could not resolve" in str(error)
        return
    assert [record.getMessage().count("\n") for record in caplog.records] == [0]  # one line, naming what it found
    assert found.block_lists[0] in caplog.records[0].getMessage()
    blocks = [id(block) for block in found().blocks(model)]
    if blocks != [id(block) for block in written.blocks(model)]:
        pytest.fail(f"discovery found other blocks than adapter {written.name!r}: {found.block_lists}")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            discovered = sampled_with(found, case, model)
    except tap.UnsupportedModelError as error:  # the first full step showed the blocks join or reshape streams
        assert "needs an adapter" in str(error)
        return
    if any("started a new generation" in str(warning.message) for warning in caught):
        # Time runs upwards and the loop gives no step index: nothing was predicted, and tap said why.
        torch.testing.assert_close(discovered, zoo.sample(case, model), rtol=0, atol=0)
        return
    with tap.accelerate(model, interval=3):
        expected = zoo.sample(case, model)
    torch.testing.assert_close(discovered, expected, rtol=1e-4, atol=1e-5)


def test_discovery_refuses_a_model_without_attention_blocks():
    with pytest.raises(tap.UnsupportedModelError, match="no ModuleList of attention blocks"):
        tap.enable(torch.nn.Sequential(torch.nn.Linear(2, 2)))


def test_discovery_names_a_block_whose_return_depends_on_its_inputs():
    model = zoo.build(CASES["Flux2Transformer2DModel"])
    with pytest.raises(tap.UnsupportedModelError, match="what Flux2SingleTransformerBlock.forward returns"):
        discover(model)
