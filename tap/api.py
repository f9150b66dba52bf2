"""Public entry points: enable / disable / accelerate and stats."""

from __future__ import annotations

import collections
import contextlib
import functools
import warnings
from typing import Any

import attrs
import torch

from tap.adapter import Adapter
from tap.clock import StepClock
from tap.compile import BlockCompiles, compiler_of, unwrap
from tap.config import TAPConfig
from tap.conflicts import refuse_other_caches, release_to_cache_dit
from tap.discovery import discover
from tap.dry_run import dry_run
from tap.errors import AlreadyEnabledError, ConfigError, TAPError, UnsupportedModelError
from tap.hooks import block_hooks, install, uninstall
from tap.parallel import context_parallel_group
from tap.plugins import registry
from tap.registry import instantiate
from tap.runtime import Runtime

HANDLE_ATTRIBUTE = "_tap_handle"
DENOISER_PREFIX = "transformer"  # a pipeline's denoisers: transformer, transformer_2, ...


def find_denoisers(target: Any) -> dict[str, torch.nn.Module]:
    """Every transformer a pipeline holds (``transformer``, ``transformer_2``, ...), or the module itself."""
    if isinstance(target, torch.nn.Module):
        return {DENOISER_PREFIX: target}
    components = getattr(target, "components", None)
    if not isinstance(components, dict):
        raise ConfigError(
            f"tap.enable takes a diffusers pipeline or a transformer module (torch.nn.Module), got {type(target).__name__}"
        )
    found = {name: module for name, module in components.items() if name.startswith(DENOISER_PREFIX) and module is not None}
    if not found:
        raise ConfigError(
            f"pipeline {type(target).__name__} has no transformer to accelerate (its components: "
            f"{', '.join(f'{name}={type(module).__name__}' for name, module in components.items())})"
        )
    wrong = {name: type(module).__name__ for name, module in found.items() if not isinstance(module, torch.nn.Module)}
    if wrong:
        raise ConfigError(f"pipeline {type(target).__name__} holds denoisers that are not torch modules: {wrong}")
    return found


def find_transformer(target: Any) -> torch.nn.Module:
    """The (first) denoiser of a pipeline, or the module itself, without a ``torch.compile`` wrapper."""
    return unwrap(next(iter(find_denoisers(target).values())))


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
    return discover(transformer)()


@attrs.frozen
class TAPStats:
    """What tap did in the last generation (summed over cache contexts such as cond/uncond).

    ``blocks_avoided``: share of transformer-block evaluations skipped; ``candidate_share``:
    share of predicted tokens that used each candidate; ``cache_bytes``: the most memory the cache
    held; ``fallbacks``: predicted steps computed in full because the prediction was not finite;
    ``left_alone``: why the schedule computed the whole generation in full (a run too short to
    forecast, or one whose step count tap could not read), else None; ``non_finite``: for each
    candidate that predicted a non-finite value, in how many predicted steps (its tokens then used
    the best finite candidate, or the step fell back to full compute when a token had none);
    ``restarts``: steps at which the latents left their trajectory (the trajectory guard, or
    :func:`invalidate`) and the forecast started over. For a pipeline with several denoisers (Wan 2.2's two experts) the figures cover them all
    and ``denoisers`` has each one's own. Under context parallelism every rank makes the same
    decisions, candidate shares cover every rank's tokens, and ``cache_bytes`` is this rank's.
    """

    steps: int
    full_steps: int
    predicted_steps: int
    blocks_run: int
    blocks_skipped: int
    candidate_share: dict[str, float]
    cache_bytes: int
    contexts: tuple[str, ...]
    fallbacks: int = 0
    restarts: int = 0
    denoisers: dict[str, TAPStats] = attrs.field(factory=dict)
    left_alone: str | None = None
    non_finite: dict[str, int] = attrs.field(factory=dict)

    @property
    def blocks_avoided(self) -> float:
        total = self.blocks_run + self.blocks_skipped
        return self.blocks_skipped / total if total else 0.0

    def __str__(self) -> str:
        """A few readable lines: the steps, the blocks avoided, and each denoiser's share when there are several."""
        lines = [
            f"tap: {self.steps} steps ({self.full_steps} full, {self.predicted_steps} predicted), "
            f"{100 * self.blocks_avoided:.1f}% of block evaluations avoided, {self.fallbacks} fallbacks, "
            f"cache {self.cache_bytes / 2**20:.1f} MiB, contexts {', '.join(self.contexts) or '-'}",
        ]
        if self.left_alone is not None:
            lines.append(f"  left alone: {self.left_alone}")
        if self.non_finite:
            lines.append("  non-finite predictions: " + ", ".join(f"{label} in {n} steps" for label, n in self.non_finite.items()))
        if len(self.candidate_share) > 1:
            lines.append("  candidates: " + ", ".join(f"{label} {100 * share:.1f}%" for label, share in self.candidate_share.items()))
        if len(self.denoisers) > 1:
            lines += [f"  {name}: " + str(stats).removeprefix("tap: ").splitlines()[0] for name, stats in self.denoisers.items()]
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {
            **attrs.asdict(self, recurse=False),
            "denoisers": {name: stats.as_dict() for name, stats in self.denoisers.items()},
            "blocks_avoided": self.blocks_avoided,
        }


COUNTED = ("steps", "full_steps", "predicted_steps", "blocks_run", "blocks_skipped", "cache_bytes", "fallbacks", "restarts")


def _stats_of(states: list, labels: list[str], contexts: tuple[str, ...], denoisers: dict[str, TAPStats] | None = None) -> TAPStats:
    """Counters of these generation states summed, candidate tokens turned into shares."""
    tokens = torch.zeros(len(labels), dtype=torch.float64)
    for state in states:
        if state.counters.candidate_tokens is not None:
            tokens += state.counters.candidate_tokens.to("cpu", torch.float64)
    total = float(tokens.sum())
    share = {label: float(n) / total for label, n in zip(labels, tokens.tolist()) if n} if total else {}
    counted = {field: sum(getattr(state.counters, field) for state in states) for field in COUNTED}
    left_alone = next((state.counters.left_alone for state in states if state.counters.left_alone is not None), None)
    non_finite = sum((collections.Counter(state.counters.non_finite) for state in states), collections.Counter())
    return TAPStats(**counted, candidate_share=share, contexts=contexts, denoisers=denoisers or {}, left_alone=left_alone,
                    non_finite=dict(non_finite))


class Denoiser:
    """tap on one transformer of a pipeline: its runtime, and what was changed on it, to undo."""

    def __init__(self, name: str, module: torch.nn.Module, runtime: Runtime) -> None:
        self.name = name
        self.transformer = unwrap(module)
        self.runtime = runtime
        self.created: list[torch.nn.Module] = []
        self.compiles: BlockCompiles | None = None  # set once the hooks are installed
        self.hooked_forward: Any = None  # the forward with tap's hook, which cache-dit may keep (see release_to_cache_dit)

    def stats(self) -> TAPStats:
        states = self.runtime.states.states()
        return _stats_of(list(states.values()), [c.label for c in self.runtime.family], tuple(states))

    def install(self, module: torch.nn.Module, pipeline: Any) -> None:
        """Hook the transformer and its blocks, and take over how they were (or will be) compiled."""
        self.created = install(self.transformer, self.runtime, functools.partial(self.check, pipeline))
        self.hooked_forward = self.transformer.forward
        bodies = [hook.compile_body for hook in block_hooks(self.runtime.blocks)]
        self.compiles = BlockCompiles(self.transformer, self.runtime.blocks, bodies)
        self.compiles.take(module)

    def check(self, pipeline: Any) -> None:
        """At the first call of each generation: no other cache was added, compile wrappers are taken over,
        and the context-parallel group (if any) is the one decisions are reduced over."""
        refuse_other_caches(self.name, self.transformer, [self.transformer, *self.runtime.blocks], tap_on=True)
        self.runtime.split_tokens_over(context_parallel_group(self.transformer))
        if pipeline is not None:
            self.compiles.take_new_wrapper(getattr(pipeline, self.name, None))
        self.compiles.refuse_unseen_wrapper(self.name)

    def disable(self) -> None:
        if self.compiles is not None:
            self.compiles.restore()
        uninstall(self.transformer, self.runtime.blocks, self.created)
        release_to_cache_dit(self.transformer, self.hooked_forward)
        self.runtime.reset()


class TAPHandle:
    """tap enabled on a pipeline's denoisers (or one transformer): its config, runtimes and a way back."""

    def __init__(self, config: TAPConfig, denoisers: dict[str, Denoiser]) -> None:
        self.config = config
        self.denoisers = denoisers
        self.disabled = False

    @property
    def _primary(self) -> Denoiser:
        return next(iter(self.denoisers.values()))

    @property
    def transformer(self) -> torch.nn.Module:
        """The (first) accelerated transformer."""
        return self._primary.transformer

    @property
    def runtime(self) -> Runtime:
        """The (first) transformer's runtime."""
        return self._primary.runtime

    def reset(self) -> None:
        """Start a new generation on the next call (for hand-written sampling loops); the statistics of
        the last one stay readable until it starts."""
        for denoiser in self.denoisers.values():
            denoiser.runtime.reset()

    def reset_stats(self) -> None:
        """Zero the statistics :func:`tap.stats` reports, without touching the generation in progress."""
        for denoiser in self.denoisers.values():
            denoiser.runtime.reset_stats()

    def invalidate(self) -> None:
        """Say that the latents left the trajectory (a callback edited them): the forecast starts over from
        the next steps, run in full, and the generation and its statistics go on."""
        for denoiser in self.denoisers.values():
            denoiser.runtime.invalidate()

    def stats(self) -> TAPStats:
        each = {name: denoiser.stats() for name, denoiser in self.denoisers.items()}
        states = [state for denoiser in self.denoisers.values() for state in denoiser.runtime.states.states().values()]
        contexts = tuple(dict.fromkeys(context for stats in each.values() for context in stats.contexts))
        return _stats_of(states, [c.label for c in self.runtime.family], contexts, each)

    def disable(self) -> None:
        """Remove every hook and compile takeover; each transformer's forward is the original again.
        Disabling a handle that is already disabled does nothing."""
        if self.disabled:
            return
        self.disabled = True
        for denoiser in self.denoisers.values():
            denoiser.disable()
            if getattr(denoiser.transformer, HANDLE_ATTRIBUTE, None) is self:
                delattr(denoiser.transformer, HANDLE_ATTRIBUTE)


def _prepare(name: str, module: torch.nn.Module, config: TAPConfig, clock: StepClock) -> Denoiser:
    """Everything checked and built for one denoiser, nothing changed on it yet."""
    transformer = unwrap(module)
    if getattr(transformer, HANDLE_ATTRIBUTE, None) is not None:
        raise AlreadyEnabledError(f"tap is already enabled on this {type(transformer).__name__}; call tap.disable first")
    adapter = resolve_adapter(transformer, config.adapter)
    blocks = list(adapter.blocks(transformer))
    if not blocks:
        raise UnsupportedModelError(f"adapter {adapter.name!r} found no blocks in {type(transformer).__name__}")
    refuse_other_caches(name, transformer, transformer.modules(), tap_on=False)
    for compiled in (module, transformer, *blocks):
        compiler_of(compiled)  # refuses a compile whose settings cannot be read, before anything changes
    runtime = Runtime(adapter, blocks, config, clock)
    dry_run(runtime)
    return Denoiser(name, module, runtime)


def _supported(denoisers: dict[str, torch.nn.Module], config: TAPConfig) -> dict[str, torch.nn.Module]:
    """The denoisers an adapter supports; a pipeline whose other denoisers no adapter knows gets a warning."""
    if len(denoisers) == 1:
        return denoisers
    supported, skipped = {}, []
    for name, module in denoisers.items():
        try:
            resolve_adapter(unwrap(module), config.adapter)
            supported[name] = module
        except UnsupportedModelError:
            skipped.append(f"{name} ({type(unwrap(module)).__name__})")
    if not supported:
        return dict([next(iter(denoisers.items()))])  # let the first one's error speak
    if skipped:
        warnings.warn(f"tap accelerates {', '.join(supported)} but no adapter supports {', '.join(skipped)}", stacklevel=3)
    return supported


def enable(target: Any, config: TAPConfig | None = None, *, preset: str | None = None, **overrides) -> TAPHandle:
    """Accelerate a pipeline (every transformer it holds) or a transformer with tap; returns a :class:`TAPHandle`.

    ``preset`` names a preset or a preset file (``tap tune`` writes them) instead of ``config``;
    ``overrides`` change single fields, e.g. ``tap.enable(pipe, interval=4)``. Everything is
    validated before the model is touched. Compiled models (regionally, in place or with
    ``torch.compile``) keep their compiled blocks, in either order of compiling and enabling.
    """
    modules = find_denoisers(target)
    if config is not None and not isinstance(config, TAPConfig):
        raise ConfigError(f"config must be a tap.TAPConfig, got {type(config).__name__}")
    if config is not None and preset is not None:
        raise ConfigError("give either config or preset, not both")
    config = TAPConfig.preset(preset) if preset is not None else (config or TAPConfig())
    config = config.replace(**overrides) if overrides else config
    pipeline = None if isinstance(target, torch.nn.Module) else target
    clock = StepClock(getattr(pipeline, "scheduler", None))
    denoisers = {name: _prepare(name, module, config, clock) for name, module in _supported(modules, config).items()}
    handle = TAPHandle(config, denoisers)
    try:
        for name, denoiser in denoisers.items():
            denoiser.install(modules[name], pipeline)
            setattr(denoiser.transformer, HANDLE_ATTRIBUTE, handle)
    except BaseException:
        handle.disable()
        raise
    return handle


def handle_of(target: Any) -> TAPHandle:
    """The handle of tap on a pipeline, transformer (compiled or not) or handle."""
    if isinstance(target, TAPHandle):
        return target
    for module in find_denoisers(target).values():
        handle = getattr(unwrap(module), HANDLE_ATTRIBUTE, None)
        if handle is not None:
            return handle
    raise TAPError(f"tap is not enabled on this {type(target).__name__}")


def disable(target: Any) -> None:
    """Remove tap from a pipeline, transformer or handle."""
    handle_of(target).disable()


def stats(target: Any) -> TAPStats:
    """Statistics of the last generation on a pipeline, transformer or handle."""
    return handle_of(target).stats()


def invalidate(target: Any) -> None:
    """Restart the forecast of a pipeline, transformer or handle mid-generation (see :meth:`TAPHandle.invalidate`)."""
    handle_of(target).invalidate()


@contextlib.contextmanager
def accelerate(target: Any, config: TAPConfig | None = None, *, preset: str | None = None, **overrides):
    """``with tap.accelerate(pipe): pipe(...)`` enables tap for the block and always removes it."""
    handle = enable(target, config, preset=preset, **overrides)
    try:
        yield handle
    finally:
        handle.disable()
