"""The runtime end to end on a toy transformer whose block-stack residual is a quadratic in the step.

Quadratic residuals are what taylor order 2 reproduces exactly, so every predicted step must
match full compute to rounding: this pins down the weights, horizons and per-token assembly.
"""

import pytest
import torch

import tap
from tap.adapter import argument


class ToyBlock(torch.nn.Module):
    """Adds a per-token multiple of the time embedding: residual independent of x, quadratic in t."""

    def __init__(self, dim: int, tokens: int) -> None:
        super().__init__()
        self.token_scale = torch.nn.Parameter(torch.randn(tokens, 1))
        self.norm1 = torch.nn.LayerNorm(dim)

    def forward(self, hidden_states, temb):
        return hidden_states + self.token_scale * temb[:, None, :]


class ToyTransformer(torch.nn.Module):
    def __init__(self, dim: int = 6, tokens: int = 5, depth: int = 3) -> None:
        super().__init__()
        self.coefficients = torch.nn.Parameter(torch.randn(3, dim))
        self.blocks = torch.nn.ModuleList(ToyBlock(dim, tokens) for _ in range(depth))
        self.head = torch.nn.Linear(dim, dim)

    def forward(self, hidden_states, timestep):
        t = timestep[:, None]
        temb = self.coefficients[0] + self.coefficients[1] * t / 10 + self.coefficients[2] * (t / 10) ** 2
        for block in self.blocks:
            hidden_states = block(hidden_states, temb)
        return self.head(hidden_states)


class ToyAdapter(tap.Adapter):
    name = "toy"
    transformer_classes = ("ToyTransformer",)
    timestep_argument = ("timestep", 1)

    def blocks(self, transformer):
        return list(transformer.blocks)

    def stack_input(self, args, kwargs):
        return argument(args, kwargs, "hidden_states", 0)

    def stack_output(self, output):
        return output

    def skip_output(self, args, kwargs, hidden_states):
        return hidden_states

    def modulated_input(self, block, args, kwargs):
        return block.norm1(self.stack_input(args, kwargs)) * (1 + argument(args, kwargs, "temb", 1)[:, None, :])


def run(model, steps=20, batch=2):
    torch.manual_seed(1)
    x = torch.randn(batch, 5, 6, dtype=torch.float64)
    with torch.no_grad():
        return [model(x, torch.full((batch,), float(100 - 3 * i), dtype=torch.float64)) for i in range(steps)]


@pytest.fixture
def toy():
    tap.register_adapter(ToyAdapter)
    torch.manual_seed(0)
    return ToyTransformer().double()


@pytest.mark.parametrize(
    "overrides",
    [
        dict(orders=(2,), selector="fixed"),
        dict(orders=(2,), horizons=(-1, 0), selector="fixed", selector_options={"candidate": 1}),
        dict(orders=(2,), selector="token", probe="first-block", distance="l2"),
        dict(predictor="taylorseer", orders=(1,), interval=1),
    ],
    ids=["fixed-order-2", "horizon-0-of-two", "token-order-2", "all-full"],
)
def test_quadratic_residuals_are_predicted_exactly(toy, overrides):
    reference = run(toy)
    with tap.accelerate(toy, cache_dtype="float64", interval=overrides.pop("interval", 4), warmup=3, **overrides) as handle:
        accelerated = run(toy)
        stats = handle.stats()
    assert stats.full_steps + stats.predicted_steps == 20
    assert stats.predicted_steps == (0 if stats.full_steps == 20 else 13)  # warm-up 0-2, then 6, 10, 14, 18 full
    for step, (a, b) in enumerate(zip(reference, accelerated)):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-9), f"step {step}"


def test_reuse_is_not_exact_on_quadratic_residuals(toy):
    reference = run(toy)
    with tap.accelerate(toy, tap.TAPConfig.preset("fora", cache_dtype="float64", interval=4, warmup=3)):
        accelerated = run(toy)
    assert not torch.allclose(reference[17], accelerated[17], rtol=1e-6)  # a predicted step
