"""Public entry points: enable / disable / accelerate and stats."""

from __future__ import annotations

import contextlib
from typing import Any

import attrs
import torch

from tap.adapter import DOCS_PAGE, Adapter
from tap.config import TAPConfig
from tap.errors import AlreadyEnabledError, ConfigError, TAPError, UnsupportedModelError
from tap.hooks import install, uninstall
from tap.plugins import registry
from tap.registry import instantiate
from tap.runtime import Runtime

HANDLE_ATTRIBUTE = "_tap_handle"


def find_transformer(target: Any) -> torch.nn.Module:
    """The denoiser of a pipeline (its ``transformer``), or the module itself."""
    transformer = getattr(target, "transformer", None)
    if isinstance(transformer, torch.nn.Module):
        return transformer
    if isinstance(target, torch.nn.Module):
        return target
    raise TypeError(
        f"tap.enable takes a diffusers pipeline with a `transformer` or a transformer module, got {type(target).__name__}"
    )


def resolve_adapter(transformer: torch.nn.Module, name: str | None) -> Adapter:
    """The adapter named in the config, else the registered one that supports this transformer."""
    entries = registry().entries("adapter")
    if name is not None:
        adapter = instantiate("adapter", entries[name].cls, name, {})
        if not adapter.supports(transformer):
            raise UnsupportedModelError(
                f"adapter {name!r} handles {', '.join(adapter.transformer_classes) or 'no named class'}, "
                f"not {type(transformer).__name__}"
            )
        return adapter
    for adapter_name, entry in sorted(entries.items()):
        adapter = instantiate("adapter", entry.cls, adapter_name, {})
        if adapter.supports(transformer):
            return adapter
    supported = sorted(c for e in entries.values() for c in e.cls.transformer_classes)
    raise UnsupportedModelError(
        f"tap has no adapter for {type(transformer).__name__}; supported transformers: "
        f"{', '.join(supported) or '(none)'}. To support it, configure the generic adapter in a few lines "
        f"(tap_plugins.adapters.generic.make_adapter, then tap.register_adapter) or write one: see {DOCS_PAGE}"
    )


def _step_count_reader(target: Any):
    scheduler = getattr(target, "scheduler", None)

    def num_steps() -> int | None:
        timesteps = getattr(scheduler, "timesteps", None)
        return len(timesteps) if timesteps is not None else None

    return num_steps


@attrs.frozen
class TAPStats:
    """What tap did in the last generation (summed over cache contexts such as cond/uncond).

    ``blocks_avoided``: share of transformer-block evaluations skipped; ``candidate_share``:
    share of predicted tokens that used each candidate; ``cache_bytes``: the most memory the cache held.
    """

    steps: int
    full_steps: int
    predicted_steps: int
    blocks_run: int
    blocks_skipped: int
    candidate_share: dict[str, float]
    cache_bytes: int
    contexts: tuple[str, ...]

    @property
    def blocks_avoided(self) -> float:
        total = self.blocks_run + self.blocks_skipped
        return self.blocks_skipped / total if total else 0.0

    def as_dict(self) -> dict:
        return {**attrs.asdict(self), "blocks_avoided": self.blocks_avoided}


class TAPHandle:
    """tap enabled on one transformer: its config, runtime and a way back."""

    def __init__(self, transformer: torch.nn.Module, config: TAPConfig, runtime: Runtime, created: list) -> None:
        self.transformer = transformer
        self.config = config
        self.runtime = runtime
        self._created = created

    def reset(self) -> None:
        """Start a new generation on the next call (for hand-written sampling loops)."""
        self.runtime.reset()

    def stats(self) -> TAPStats:
        states = self.runtime.states.states()
        labels = [c.label for c in self.runtime.family]
        tokens = torch.zeros(len(labels), dtype=torch.float64)
        for state in states.values():
            if state.counters.candidate_tokens is not None:
                tokens += state.counters.candidate_tokens.to("cpu", torch.float64)
        total = float(tokens.sum())
        share = {label: float(n) / total for label, n in zip(labels, tokens.tolist()) if n} if total else {}
        total_of = lambda field: sum(getattr(s.counters, field) for s in states.values())  # noqa: E731
        return TAPStats(
            steps=total_of("steps"),
            full_steps=total_of("full_steps"),
            predicted_steps=total_of("predicted_steps"),
            blocks_run=total_of("blocks_run"),
            blocks_skipped=total_of("blocks_skipped"),
            candidate_share=share,
            cache_bytes=total_of("cache_bytes"),
            contexts=tuple(states),
        )

    def disable(self) -> None:
        """Remove every hook; the transformer's forward is the original again."""
        uninstall(self.transformer, self.runtime.blocks, self._created)
        self.runtime.reset()
        if getattr(self.transformer, HANDLE_ATTRIBUTE, None) is self:
            delattr(self.transformer, HANDLE_ATTRIBUTE)


def enable(target: Any, config: TAPConfig | None = None, *, preset: str | None = None, **overrides) -> TAPHandle:
    """Accelerate a pipeline (or its transformer) with tap; returns a :class:`TAPHandle`.

    ``preset`` names a preset or a preset file (``tap tune`` writes them) instead of ``config``;
    ``overrides`` change single fields, e.g. ``tap.enable(pipe, interval=4)``. Everything is
    validated before the model is touched.
    """
    transformer = find_transformer(target)
    if config is not None and not isinstance(config, TAPConfig):
        raise ConfigError(f"config must be a tap.TAPConfig, got {type(config).__name__}")
    if config is not None and preset is not None:
        raise ConfigError("give either config or preset, not both")
    config = TAPConfig.preset(preset) if preset is not None else (config or TAPConfig())
    config = config.replace(**overrides) if overrides else config
    if getattr(transformer, HANDLE_ATTRIBUTE, None) is not None:
        raise AlreadyEnabledError(f"tap is already enabled on this {type(transformer).__name__}; call tap.disable first")
    adapter = resolve_adapter(transformer, config.adapter)
    blocks = list(adapter.blocks(transformer))
    if not blocks:
        raise UnsupportedModelError(f"adapter {adapter.name!r} found no blocks in {type(transformer).__name__}")
    runtime = Runtime(adapter, blocks, config, _step_count_reader(target))
    created = install(transformer, runtime)
    handle = TAPHandle(transformer, config, runtime, created)
    setattr(transformer, HANDLE_ATTRIBUTE, handle)
    return handle


def handle_of(target: Any) -> TAPHandle:
    if isinstance(target, TAPHandle):
        return target
    handle = getattr(find_transformer(target), HANDLE_ATTRIBUTE, None)
    if handle is None:
        raise TAPError(f"tap is not enabled on this {type(target).__name__}")
    return handle


def disable(target: Any) -> None:
    """Remove tap from a pipeline, transformer or handle."""
    handle_of(target).disable()


def stats(target: Any) -> TAPStats:
    """Statistics of the last generation on a pipeline, transformer or handle."""
    return handle_of(target).stats()


@contextlib.contextmanager
def accelerate(target: Any, config: TAPConfig | None = None, *, preset: str | None = None, **overrides):
    """``with tap.accelerate(pipe): pipe(...)`` enables tap for the block and always removes it."""
    handle = enable(target, config, preset=preset, **overrides)
    try:
        yield handle
    finally:
        handle.disable()
