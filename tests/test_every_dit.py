"""Every diffusion transformer class in the installed diffusers, tiny, under tap (CPU).

The classes are enumerated from diffusers itself, so a class added by a newer release fails here
until it has a tiny case in ``tests/zoo`` and an adapter (or is refused with a reason). Per class:
with every step computed tap equals plain diffusers; at interval 3 fewer blocks run, the output is
finite, and its distance from plain diffusers stays in the range of the other classes (a stream
left stale by a skipped block shows up as a far larger distance); and so it does with the probe
and per-token selection, and with a probe-driven schedule that calls the transformer per sample.
Given the true residuals of a full-compute run as its forecast, tap reproduces plain diffusers:
no stream is left stale and nothing added between blocks is counted twice.
"""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest
import torch

import tap
import zoo

from zoo import FAR, relative

DIT_CLASSES = zoo.dit_classes()
CASES = zoo.cases()
TRUE_RESIDUALS: dict[int, torch.Tensor] = {}  # step -> the stack's residual of a full-compute run, for Oracle


@attrs.frozen
class Oracle(tap.Predictor):
    """Predicts the residual a full-compute run had at the target step (``TRUE_RESIDUALS``): with it a
    correctly wired adapter reproduces plain diffusers on predicted steps, and one that leaves a stream
    stale or counts an addition twice does not."""

    name = "oracle"
    history = 1
    exact_degree = 0

    def _predict(self, steps, values, target):
        true = TRUE_RESIDUALS.get(int(target))
        return values[-1] if true is None or true.shape != values.shape[1:] else true.to(values.dtype)


@pytest.fixture
def oracle():
    tap.register_predictor(Oracle)
    yield
    tap.unregister_predictor("oracle")
    TRUE_RESIDUALS.clear()


class RealBlockCalls:
    """Counts real evaluations of the hooked blocks: calls of the first linear layer inside each, outside its
    norms (a head may call a block's norm embedding after the stack, as DiT's does)."""

    def __init__(self, blocks) -> None:
        self.calls = 0
        linears = [
            next(m for n, m in block.named_modules() if isinstance(m, torch.nn.Linear) and "norm" not in n) for block in blocks
        ]
        self.handles = [linear.register_forward_hook(self._count) for linear in linears]

    def _count(self, *_):
        self.calls += 1

    def remove(self):
        for handle in self.handles:
            handle.remove()


def test_the_zoo_has_a_case_for_every_class():
    assert sorted(CASES) == DIT_CLASSES


def test_the_adapter_page_has_a_row_per_class_naming_its_adapter():
    page = (Path(__file__).parent.parent / "docs" / "adapters.md").read_text()
    rows = dict(re.findall(r"^\| `(\w+Model)` \| `([\w.-]+)` \|", page, flags=re.MULTILINE))
    covering = {cls: name for name, entry in tap.plugins.registry().entries("adapter").items() for cls in entry.cls.transformer_classes}
    assert sorted(rows) == DIT_CLASSES
    assert {cls: covering.get(cls) for cls in DIT_CLASSES} == rows


@pytest.mark.parametrize("name", DIT_CLASSES)
def test_every_dit_class(name):
    case = CASES[name]
    model = zoo.build(case)
    plain = zoo.sample(case, model)
    assert torch.isfinite(plain).all()

    with tap.accelerate(model, interval=1) as handle:
        exact = zoo.sample(case, model)
        assert handle.stats().predicted_steps == 0
    assert torch.allclose(exact, plain, rtol=1e-5, atol=1e-6 * float(plain.abs().max())), relative(exact, plain)

    with tap.accelerate(model, interval=3) as handle:
        blocks = handle.denoisers["transformer"].runtime.blocks
        counter = RealBlockCalls(blocks)
        try:
            fast = zoo.sample(case, model)
        finally:
            counter.remove()
        stats = handle.stats()
    assert stats.predicted_steps > 0
    assert counter.calls <= stats.full_steps * len(blocks) + stats.predicted_steps  # a probe may run one block
    assert counter.calls < case.steps * len(blocks)
    assert torch.isfinite(fast).all()
    assert relative(fast, plain) < FAR

    with tap.accelerate(model, tap.TAPConfig.preset("token"), interval=3) as handle:  # the probe and per-token choice
        selected = zoo.sample(case, model)
        assert handle.stats().predicted_steps > 0
    assert torch.isfinite(selected).all()
    assert relative(selected, plain) < FAR

    with tap.accelerate(model, schedule="probe-refresh", interval=3):  # each sample's own call: the batch is split
        refreshed = zoo.sample(case, model)
    assert torch.isfinite(refreshed).all()
    assert relative(refreshed, plain) < FAR


@pytest.mark.parametrize("name", DIT_CLASSES)
def test_every_dit_class_is_exact_given_the_true_residuals(name, oracle):
    case = CASES[name]
    model = zoo.build(case)
    plain = zoo.sample(case, model)
    with tap.accelerate(model, interval=1) as handle:  # record each step's residual as tap caches it
        runtime = handle.denoisers["transformer"].runtime

        def record(*_):
            state = next(iter(runtime.states.states().values()))
            if state.r is not None:  # None after a call that ran in full without caching (a KV-cache fill)
                TRUE_RESIDUALS[state.step] = state.r[-1].clone()

        hook = model.register_forward_hook(record)
        try:
            zoo.sample(case, model)
        finally:
            hook.remove()
    with tap.accelerate(model, interval=3, predictor="oracle") as handle:
        forecast = zoo.sample(case, model)
        assert handle.stats().predicted_steps > 0
    assert relative(forecast, plain) < 1e-4
