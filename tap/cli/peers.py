"""The methods `tap bench` compares: tap presets, diffusers' cache hooks, and cache-dit when installed.

Each method is applied to a pipeline as a context manager and undone on exit, so all methods
run on one loaded model in one process.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import re
from pathlib import Path
from typing import Callable, ContextManager, Sequence

import attrs
import torch

import tap
from tap.api import find_denoisers
from tap.compile import unwrap
from tap.config import TAPConfig
from tap.errors import ConfigError, UnknownNameError
from tap.family import Candidate

TAP_PRESETS = {"tap-default": "default", "tap-token": "token", "tap-paper": "paper", "tap-global": "global", "tap-fora": "fora", "tap-taylorseer": "taylorseer"}
CACHE_DIT_CALIBRATORS = {"taylorseer": "TaylorSeerCalibratorConfig", "foca": "FoCaCalibratorConfig", "dmd": "DMDCalibratorConfig"}
CACHE_DIT_VARIANTS = {"cache-dit-dbcache": None, **{f"cache-dit-dbcache-{name}": name for name in CACHE_DIT_CALIBRATORS}}
DIFFUSERS_NAMES = ("diffusers-taylorseer", "diffusers-taylorseer-lite", "diffusers-fbcache", "diffusers-magcache", "diffusers-pab",
                   "diffusers-fastercache", "diffusers-seacache")
METHOD_NAMES = (*TAP_PRESETS, "tap-probe-refresh", *DIFFUSERS_NAMES, *CACHE_DIT_VARIANTS)  # what `tap bench --methods` accepts
# and, with `tap bench --predictors P ...`, tap-P for each and SELECT_METHOD for two or more (predictor_method_names)
SELECT_METHOD = "tap-select"
PEER_PACKAGES = {"diffusers": "diffusers", "cache-dit": "cache_dit"}  # a peer family's package: its loggers share the name


@attrs.frozen
class Method:
    """One point of a method's speed sweep: ``apply(pipe)`` is a context manager enabling it."""

    name: str
    setting: str
    family: str
    apply: Callable[[object], ContextManager] = attrs.field(eq=False, repr=False)


def tap_method(name: str, setting: str, config: TAPConfig) -> Method:
    """tap with ``config`` as one bench method (the config is validated now, not when it runs)."""
    return Method(name, setting, "tap", lambda pipe: tap.accelerate(pipe, config))


def tap_methods(intervals: list[int], refresh: tuple[float, ...]) -> list[Method]:
    """tap's default, its presets on fixed grids, and the default with probe-driven refresh instead."""
    default = TAPConfig()
    presets = [tap_method("tap-default", f"full_steps={default.full_steps}", default)] + [
        tap_method(name, f"interval={n}", TAPConfig.preset(preset, interval=n))
        for name, preset in TAP_PRESETS.items()
        for n in intervals
    ]
    refreshed = [
        tap_method("tap-probe-refresh", f"error>{t}",
                   TAPConfig(schedule="probe-refresh", schedule_options={"signal": "error", "threshold": t, "min_gap": 2, "max_gap": 12}))
        for t in refresh
    ]
    return presets + refreshed


def predictor_method_names(predictors: Sequence[str]) -> tuple[str, ...]:
    """The bench methods ``--predictors`` adds: tap-<name> for each, and tap-select for two or more."""
    return (*(f"tap-{name}" for name in predictors), *((SELECT_METHOD,) if len(predictors) >= 2 else ()))


def named_predictors(predictors: Sequence[str]) -> list:
    """The registered predictors ``--predictors`` names, at their default parameters; unknown or repeated
    names are refused with a ConfigError that lists the registered predictors."""
    names = list(predictors)
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"--predictors names {repeated[0]!r} twice")
    found = []
    for name in names:
        try:
            found.append(tap.get_predictor(name))
        except UnknownNameError:
            raise ConfigError(f"--predictors: unknown predictor {name!r}; registered predictors: {', '.join(tap.predictor_names())}") from None
    return found


def predictor_methods(predictors: Sequence[str]) -> list[Method]:
    """Each named registered predictor alone (selector fixed, its default parameters: order 1 where it
    has an order), and with two or more, per-token selection among them (tap-select: the default
    probe, distance and ``token`` selector); all at the default full-step rule (TAPConfig().full_steps)."""
    names, found = list(predictors), named_predictors(predictors)
    setting = f"full_steps={TAPConfig().full_steps}"
    methods = [tap_method(f"tap-{name}", setting, TAPConfig(candidates=(Candidate(predictor),), selector="fixed"))
               for name, predictor in zip(names, found)]
    if len(found) >= 2:
        methods.append(tap_method(SELECT_METHOD, setting, TAPConfig(candidates=tuple(map(Candidate, found)), selector="token")))
    return methods


def denoisers(pipe) -> list[torch.nn.Module]:
    """The pipeline's transformers: ``transformer`` and, in two-expert pipelines (Wan 2.2 A14B), ``transformer_2``."""
    return [unwrap(module) for module in find_denoisers(pipe).values()]


@contextlib.contextmanager
def diffusers_cache(pipe, config):
    """``enable_cache(config)`` on every transformer of the pipeline for the block, always disabled after."""
    enabled = []
    try:
        for transformer in denoisers(pipe):
            transformer.enable_cache(config)
            enabled.append(transformer)
        yield None
    finally:
        for transformer in enabled:
            transformer.disable_cache()


class TimestepTracker:
    """Remembers the timestep (0-1000 scale) of the transformer's last call, for hooks that need it."""

    def __init__(self, transformer: torch.nn.Module, adapter) -> None:
        self.value = 1000.0
        self._adapter = adapter
        self._handle = transformer.register_forward_pre_hook(self._record, with_kwargs=True)

    def _record(self, module, args, kwargs):
        timestep, _ = self._adapter.generation_key(args, kwargs)
        if timestep is not None:
            self.value = timestep * 1000.0 if timestep <= 1.0 else timestep

    def __call__(self) -> float:
        return self.value

    def remove(self) -> None:
        self._handle.remove()


def calibrate_magcache(pipe, run: Callable[[], None], steps: int) -> list[float]:
    """MagCache's documented calibration: one run with ``calibrate=True``, whose printed ratios we read."""
    from diffusers import MagCacheConfig

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), diffusers_cache(pipe, MagCacheConfig(calibrate=True, num_inference_steps=steps)):
        run()
    found = re.findall(r"\[([-0-9.,eE\s]+)\]", printed.getvalue())
    if not found:
        raise RuntimeError("MagCache calibration printed no ratios")
    return [float(v) for v in found[-1].split(",")]


def diffusers_methods(pipe, steps: int, intervals: list[int], thresholds: dict[str, list[float]], timestep: TimestepTracker, mag_ratios) -> list[Method]:
    from diffusers import (
        FasterCacheConfig,
        FirstBlockCacheConfig,
        MagCacheConfig,
        PyramidAttentionBroadcastConfig,
        SeaCacheConfig,
        TaylorSeerCacheConfig,
    )

    methods = []
    for n in intervals:
        for name, lite in (("diffusers-taylorseer", False), ("diffusers-taylorseer-lite", True)):
            config = lambda n=n, lite=lite: TaylorSeerCacheConfig(cache_interval=n, disable_cache_before_step=1, max_order=1, use_lite_mode=lite, taylor_factors_dtype=torch.float32)
            methods.append(Method(name, f"interval={n}", "diffusers", lambda pipe, c=config: diffusers_cache(pipe, c())))
    for t in thresholds["fbcache"]:
        methods.append(Method("diffusers-fbcache", f"threshold={t}", "diffusers", lambda pipe, t=t: diffusers_cache(pipe, FirstBlockCacheConfig(threshold=t))))
    for t in thresholds["magcache"]:
        config = lambda t=t: MagCacheConfig(threshold=t, num_inference_steps=steps, mag_ratios=mag_ratios)
        methods.append(Method("diffusers-magcache", f"threshold={t}", "diffusers", lambda pipe, c=config: diffusers_cache(pipe, c())))
    for skip in thresholds["pab"]:
        config = lambda s=int(skip): PyramidAttentionBroadcastConfig(spatial_attention_block_skip_range=s, spatial_attention_timestep_skip_range=(100, 950), current_timestep_callback=timestep)
        methods.append(Method("diffusers-pab", f"skip={int(skip)}", "diffusers", lambda pipe, c=config: diffusers_cache(pipe, c())))
    for skip in thresholds["fastercache"]:
        config = lambda s=int(skip): FasterCacheConfig(spatial_attention_block_skip_range=s, spatial_attention_timestep_skip_range=(-1, 950), current_timestep_callback=timestep, is_guidance_distilled=True, tensor_format="BCHW")
        methods.append(Method("diffusers-fastercache", f"skip={int(skip)}", "diffusers", lambda pipe, c=config: diffusers_cache(pipe, c())))
    for t in thresholds["seacache"]:  # video transformers (built in: Wan text-to-video, Cosmos 3)
        methods.append(Method("diffusers-seacache", f"threshold={t}", "diffusers", lambda pipe, t=t: diffusers_cache(pipe, SeaCacheConfig(threshold=t))))
    return methods


def cache_dit_available() -> bool:
    try:
        import cache_dit  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def cache_dit_dbcache(pipe, blocks: list[torch.nn.Module], steps: int, threshold: float, calibrator: str | None):
    """cache-dit's DBCache (first block computed every step, residual threshold), optionally with one of its
    calibrators (``CACHE_DIT_CALIBRATORS``: TaylorSeer order 1, FoCa's forecast-and-calibrate, DMD's exponential basis)."""
    import cache_dit

    # cache-dit's own adapter for the pipelines it knows (Wan's blocks return the video tokens only, both experts);
    # else the transformer's own block lists (it finds them by attribute name) in FLUX's block pattern.
    adapter = cache_dit.BlockAdapterRegister.get_adapter(pipe)
    if adapter is None:
        lists = [m for m in pipe.transformer.children() if isinstance(m, torch.nn.ModuleList) and any(b in blocks for b in m)]
        adapter = cache_dit.BlockAdapter(
            pipe=pipe, transformer=pipe.transformer, blocks=lists,
            forward_pattern=[cache_dit.ForwardPattern.Pattern_1] * len(lists), check_forward_pattern=True,
        )
    config = cache_dit.DBCacheConfig(Fn_compute_blocks=1, Bn_compute_blocks=0, residual_diff_threshold=threshold, max_warmup_steps=1, num_inference_steps=steps)
    calibrator_config = None if calibrator is None else getattr(cache_dit, CACHE_DIT_CALIBRATORS[calibrator])()
    cache_dit.enable_cache(adapter, cache_config=config, calibrator_config=calibrator_config)
    try:
        yield None
    finally:
        cache_dit.disable_cache(pipe)


def cache_dit_methods(blocks, steps: int, thresholds: list[float]) -> list[Method]:
    return [
        Method(name, f"threshold={t}", "cache-dit", lambda pipe, t=t, c=calibrator: cache_dit_dbcache(pipe, blocks, steps, t, c))
        for name, calibrator in CACHE_DIT_VARIANTS.items()
        for t in thresholds
    ]


@contextlib.contextmanager
def peer_output(family: str, log: Path | None, title: str):
    """Send what a peer prints or logs inside the block to ``log`` (appended under ``title``), so that
    it never mixes with the bench's table: stdout, stderr, and every logger of the family's package
    (cache-dit's write to the stdout they found at import). All is restored after. tap and full
    compute (families without a package in PEER_PACKAGES), or no ``log``, leave output alone."""
    package = PEER_PACKAGES.get(family)
    if log is None or package is None:
        yield
        return
    importlib.import_module(package)  # its loggers exist before they are redirected
    with open(log, "a") as stream, contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream), loggers_to(stream, package):
        stream.write(f"--- {title}\n")
        yield


@contextlib.contextmanager
def loggers_to(stream, package: str):
    """Every logger of ``package`` writes only to ``stream`` inside the block, its own handlers restored after.
    The match ignores case: cache-dit also logs as 'CACHE_DIT'."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("[%(name)s] %(levelname)s: %(message)s"))
    loggers = [logger for name, logger in list(logging.Logger.manager.loggerDict.items())
               if isinstance(logger, logging.Logger) and (name.lower() == package or name.lower().startswith(package + "."))]
    saved = [(logger, logger.handlers, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.handlers, logger.propagate = [handler], False
    try:
        yield
    finally:
        for logger, handlers, propagate in saved:
            logger.handlers, logger.propagate = handlers, propagate
        handler.close()
