"""Try the candidates' predictors and the distance on tiny tensors before tap touches a model.

A predictor whose weights have the wrong shape, or that raises, is refused at ``tap.enable`` with
a :class:`~tap.errors.PluginError` naming it rather than failing mid-generation. Probes, selectors
and schedules depend on the model's tokens and steps, so they are named when they fail at run time.
"""

from __future__ import annotations

import torch

from tap.errors import PluginError, PluginGuard
from tap.family import active_set

TOKENS, WIDTH = 3, 4  # [batch 1, 3 tokens, width 4]: tiny, and no dimension equal to another


def dry_run(runtime) -> None:
    """Run every candidate's predictor and the distance once, as a predicted step would."""
    keep = runtime.keep
    steps = tuple(range(0, 2 * keep, 2))  # uneven gaps are the predictors' business; these are even
    with runtime.guards.predictor:
        active = active_set(runtime.family, steps, steps[-1] + 1)
    generator = torch.Generator().manual_seed(0)
    history = torch.randn(keep, 1, TOKENS, WIDTH, generator=generator, dtype=torch.float64)
    probe = torch.randn(1, TOKENS, WIDTH, generator=generator, dtype=torch.float64)
    predicted = []
    for candidate, predictor, target in zip(active.labels, active.predictors, active.targets):
        with PluginGuard("predictor", candidate):
            value = predictor.predict(torch.tensor(steps, dtype=torch.float64), history, target)
        if not isinstance(value, torch.Tensor) or value.shape != history.shape[1:]:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise PluginError(f"predictor {candidate!r} returned {shape} from a history of {tuple(history.shape)}; expected {tuple(history.shape[1:])}")
        predicted.append(value)
    if not runtime.selects or not runtime.selector.needs_losses or not predicted:
        return
    with runtime.guards.distance:
        losses = runtime.distance(torch.stack(predicted), probe, history[-1])
    if not isinstance(losses, torch.Tensor) or losses.shape != (len(predicted), 1, TOKENS):
        shape = tuple(losses.shape) if isinstance(losses, torch.Tensor) else type(losses).__name__
        raise PluginError(f"distance {runtime.config.distance!r} returned {shape}; expected [candidates, batch, tokens] = {(len(predicted), 1, TOKENS)}")
