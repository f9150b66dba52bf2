"""``tap bench``: tap and its peers on one model, in one process, side by side.

Protocol: one warm-up generation (full length, untimed); then ``repeats`` interleaved rounds in which every method (full
compute first, its images the references) generates every sample, in an order rotated each round;
speed is the median round time against full compute's, and every round's seconds are kept. A
speed-up above 1.1 / (block-evaluation ratio) is more than skipping blocks can give: it is
flagged as timing noise. Quality is PSNR/SSIM (first round) against the full-compute image (or
video: the mean over its frames) of the same seed. Block evaluations are counted with forward
hooks; FLOPs (``torch.utils.flop_counter``) and cache memory in one more, untimed, generation of
one sample (``profile``). Generations run without autograd, and the process's grad mode is left
as it was.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import os
import platform
import statistics
from pathlib import Path

import attrs
import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

import tap
from tap._compat import hook_registry, state_cache
from tap.api import find_denoisers, find_transformer, resolve_adapter
from tap.cli.generate import DTYPES, add_video_options, call_options, check_sizes, check_writable, is_video, load_pipeline, run_pipeline
from tap.cli.metrics import psnr, ssim
from tap.cli.peers import (
    CACHE_DIT_VARIANTS,
    METHOD_NAMES,
    PEER_PACKAGES,
    Method,
    TimestepTracker,
    cache_dit_available,
    cache_dit_methods,
    calibrate_magcache,
    diffusers_methods,
    named_predictors,
    peer_output,
    predictor_method_names,
    predictor_methods,
    tap_methods,
)
from tap.cli.report import NOISE_MARGIN
from tap.compile import unwrap
from tap.config import TAPConfig
from tap.psnr import PSNR_CAP
from tap.runtime import build_schedule

FULL = Method("full", "-", "reference", lambda pipe: contextlib.nullcontext())
QUICK_METHODS = ("tap-default", "tap-fora", "diffusers-taylorseer-lite", "diffusers-fbcache", "diffusers-seacache",
                 "cache-dit-dbcache", "cache-dit-dbcache-taylorseer")
QUICK_HELP = ("under 5 minutes on 2 CPU cores for the demo model at one step count, cache-dit included: one prompt and seed, "
              "3 timing rounds, tap-default and tap-fora against diffusers' TaylorSeer-lite and FBCache (and SeaCache on a video "
              "pipeline) and cache-dit's DBCache with and without TaylorSeer, one setting each; no FLOPs or cache memory")


@attrs.frozen
class BenchSettings:
    """What to run: model, samples, steps, and each method family's sweep."""

    model: str = "demo"
    prompts: tuple[str, ...] = ("A", "g", "7", "R")
    seeds: tuple[int, ...] = (0, 1)
    steps: int = 50
    device: str = "cpu"
    dtype: str = "float32"
    repeats: int = 3
    intervals: tuple[int, ...] = (3, 4, 5, 6, 8, 10)
    fbcache: tuple[float, ...] = (0.06, 0.1, 0.2, 0.3, 0.5)
    magcache: tuple[float, ...] = (0.02, 0.06, 0.12, 0.24, 0.5)
    pab: tuple[int, ...] = (2, 4)
    fastercache: tuple[int, ...] = (2, 4)
    cache_dit: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4, 0.8)
    seacache: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)  # video pipelines only
    refresh: tuple[float, ...] = (0.05, 0.1, 0.2)  # tap's probe-refresh thresholds
    peers: bool = True
    frames: int | None = None  # None: the pipeline's default (video pipelines)
    height: int | None = None
    width: int | None = None
    methods: tuple[str, ...] | None = None  # the methods to run, by name (None: every one above); full compute always runs
    predictors: tuple[str, ...] = attrs.field(default=(), converter=tuple)  # registered predictors to run alone (tap-<name>) and, two or more, selected per token (tap-select)
    profile: bool = True  # FLOPs and cache memory, in one more untimed generation per method

    def __attrs_post_init__(self):
        """Refuse bad settings before any model loads."""
        for name in ("steps", "repeats"):
            if getattr(self, name) < 1:
                raise tap.ConfigError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if not self.prompts or not self.seeds:
            raise tap.ConfigError("give at least one prompt and one seed")
        named_predictors(self.predictors)  # refuses an unknown predictor, naming the registered ones
        known = (*METHOD_NAMES, *predictor_method_names(self.predictors))
        unknown = [name for name in self.methods or () if name not in known]
        if unknown:
            raise tap.ConfigError(f"--methods: unknown method {unknown[0]!r} (known: {', '.join(known)})")
        check_sizes(frames=self.frames, height=self.height, width=self.width)
        tap_methods(list(self.intervals), self.refresh)  # builds, so validates, every tap configuration

    @classmethod
    def quick(cls, **overrides) -> BenchSettings:
        """The bench in minutes: one sample, one setting per method, the QUICK_METHODS only, and no
        profiling generation; still three interleaved timing rounds (see QUICK_HELP)."""
        base = dict(prompts=("A",), seeds=(0,), repeats=3, intervals=(6,), refresh=(), fbcache=(0.2,), magcache=(), pab=(),
                    fastercache=(), cache_dit=(0.2,), seacache=(0.25, 1.0), methods=QUICK_METHODS, profile=False)
        return cls(**{**base, **overrides})

    def wants(self, name: str) -> bool:
        """Whether the method called ``name`` is to run."""
        return self.methods is None or name in self.methods


@attrs.define
class Record:
    """One method at one setting, averaged over the samples."""

    method: str
    setting: str
    family: str
    speedup: float | None = None
    seconds: float | None = None
    compute_ratio: float | None = None
    flops_ratio: float | None = None
    psnr: float | None = None
    ssim: float | None = None
    cache_bytes: int | None = None
    full_steps: float | None = None  # mean full steps per generation (every block ran)
    error: str | None = None
    steps: int | None = None  # the generation's step count
    round_seconds: list[float] = attrs.Factory(list)  # every timing round's seconds, in round order

    @property
    def speedup_noise(self) -> bool:
        """Whether the speed-up is above NOISE_MARGIN / compute_ratio: faster than skipping blocks can
        make it, so the timing was disturbed (the machine's other work, a cold first round)."""
        return self.speedup is not None and self.compute_ratio is not None and self.speedup * self.compute_ratio > NOISE_MARGIN


@attrs.frozen
class Measurement:
    """One method over every sample: [frames, H, W, C] arrays by (prompt, seed), generation seconds, blocks evaluated."""

    images: dict
    seconds: float
    block_calls: int
    full_steps: float | None


class BlockCounter:
    """Counts evaluated blocks: calls of each block's last parameterised leaf module, which runs only
    when the block itself really runs (skipping hooks replace the whole block).

    Given each transformer's blocks (``{transformer: blocks}``, every denoiser of a two-expert
    pipeline), it also counts transformer calls and the full ones (every block ran), so that any
    method's full steps can be compared with tap's.
    """

    def __init__(self, blocks_of: dict[torch.nn.Module, list[torch.nn.Module]]) -> None:
        self.calls = 0
        self.transformer_calls = self.full_calls = 0
        leaves = [self._last_leaf(block) for blocks in blocks_of.values() for block in blocks]
        self._handles = [leaf.register_forward_hook(self._count) for leaf in leaves]
        for transformer, blocks in blocks_of.items():
            self._handles += [transformer.register_forward_pre_hook(self._start),
                              transformer.register_forward_hook(functools.partial(self._end, len(blocks)))]
        self._at_start = 0

    def _start(self, *_):
        self._at_start = self.calls

    def _end(self, blocks: int, *_):
        self.transformer_calls += 1
        self.full_calls += self.calls - self._at_start >= blocks

    def full_steps(self, steps_per_generation: int) -> float | None:
        """Mean full steps per generation: the share of full transformer calls times the step count."""
        return self.full_calls / self.transformer_calls * steps_per_generation if self.transformer_calls else None

    @staticmethod
    def _last_leaf(block):
        leaves = [m for m in block.modules() if not list(m.children()) and list(m.parameters(recurse=False))]
        return leaves[-1]

    def _count(self, *_):
        self.calls += 1

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def hook_state_bytes(transformer: torch.nn.Module) -> int:
    """Bytes of tensors held in diffusers hook states under ``transformer`` (tap's included)."""
    from diffusers.hooks.hooks import BaseState, StateManager

    seen, total = set(), 0
    for module in transformer.modules():
        registry = hook_registry(module)
        for hook in (registry.hooks.values() if registry else ()):
            states = []
            for value in vars(hook).values():
                if isinstance(value, StateManager):
                    states += state_cache(value).values()
                elif isinstance(value, BaseState) or type(value).__name__.endswith("State"):
                    states.append(value)  # PAB and FasterCache keep plain state objects
            for tensor in (t for state in states for t in _tensors(vars(state))):
                if id(tensor) not in seen:
                    seen.add(id(tensor))
                    total += tensor.numel() * tensor.element_size()
    return total


def _tensors(value):
    """Every tensor in ``value``, looking into lists, tuples and dicts (hook states nest them)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)


def quality(references: dict, images: dict) -> tuple[float, float]:
    """Mean PSNR (capped at PSNR_CAP) and SSIM of ``images`` (or videos) against ``references`` with the same keys."""
    return (
        float(np.mean([min(psnr(references[k], v), PSNR_CAP) for k, v in images.items()])),
        float(np.mean([ssim(references[k], v) for k, v in images.items()])),
    )


class Bench:
    """Runs :class:`BenchSettings` and returns one :class:`Record` per method and setting.

    ``pipe``: the pipeline benched (:meth:`load` loads the settings' model); only the bench's own runs change it.
    ``peer_log``: a file that receives what the peers (diffusers' hooks, cache-dit) print or log
    while they run, so it stays out of the bench's own output (None: left where it goes).
    """

    def __init__(self, settings: BenchSettings, pipe, progress: bool = True, peer_log: Path | None = None) -> None:
        self.settings = settings
        self.progress = progress
        self.peer_log = peer_log
        if peer_log is not None:
            peer_log.write_text("")  # this bench's peers only; every step count appends
        self.pipe = pipe
        self.call_options = call_options(self.pipe, num_frames=settings.frames, height=settings.height, width=settings.width)
        self.transformer = find_transformer(self.pipe)
        self.adapter = resolve_adapter(self.transformer, None)
        self.blocks = list(self.adapter.blocks(self.transformer))
        self.blocks_of = {transformer: list(resolve_adapter(transformer, None).blocks(transformer))
                          for transformer in map(unwrap, find_denoisers(self.pipe).values())}
        self.samples = [(p, s) for p in settings.prompts for s in settings.seeds]
        self.notes: list[str] = ["LPIPS, ImageReward and CLIP: skipped (their weights are not available locally)."]

    @classmethod
    def load(cls, settings: BenchSettings, progress: bool = True, peer_log: Path | None = None) -> Bench:
        """Load ``settings.model``'s pipeline (on its device, in its dtype) and bench it."""
        return cls(settings, load_pipeline(settings.model, settings.device, DTYPES[settings.dtype]), progress, peer_log)

    def with_steps(self, steps: int) -> Bench:
        """This bench, on the same loaded pipeline, at another step count."""
        other = copy.copy(self)
        other.settings = attrs.evolve(self.settings, steps=steps)
        other.notes = list(self.notes)
        return other

    def generate(self, prompt: str, seed: int, steps: int | None = None) -> tuple[np.ndarray, float]:
        """One sample as [frames, H, W, C] and its seconds (see :func:`tap.cli.generate.run_pipeline`), without
        autograd: scoped here, so the caller's grad mode is never changed."""
        s = self.settings
        with torch.no_grad():
            return run_pipeline(self.pipe, prompt, steps or s.steps, seed, s.device, "", quiet=True, **self.call_options)

    def methods(self) -> list[Method]:
        """Every method the settings sweep, less those ``settings.methods`` leaves out."""
        s = self.settings
        methods = tap_methods(list(s.intervals), s.refresh) + predictor_methods(s.predictors)
        self.notes.append(f"{s.steps} steps: tap-default's full steps without an interval: {build_schedule(TAPConfig()).describe(s.steps)}.")
        if s.peers:
            methods += self._peer_methods()
        methods = [method for method in methods if s.wants(method.name)]
        if self.peer_log is not None and any(method.family in PEER_PACKAGES for method in methods):
            self.notes.append(f"What the peers printed or logged while they ran is in {self.peer_log}.")
        return methods

    def _peer_methods(self) -> list[Method]:
        """diffusers' cache hooks (MagCache calibrated first, when it is to run) and cache-dit when installed."""
        s = self.settings
        magcache, ratios = list(s.magcache) if s.wants("diffusers-magcache") else [], None
        if magcache:
            try:
                with peer_output("diffusers", self.peer_log, "MagCache calibration"):
                    ratios = calibrate_magcache(self.pipe, lambda: self.generate(*self.samples[0]), s.steps)
            except Exception as error:  # calibration is the peer's machinery; report, don't abort the bench
                self.notes.append(f"MagCache calibration failed: {error}")
        sweeps = {"fbcache": list(s.fbcache), "magcache": magcache if ratios else [], "pab": list(s.pab), "fastercache": list(s.fastercache),
                  "seacache": list(s.seacache) if is_video(self.pipe) else []}
        methods = diffusers_methods(self.pipe, s.steps, list(s.intervals), sweeps, TimestepTracker(self.transformer, self.adapter), ratios)
        if s.cache_dit and any(map(s.wants, CACHE_DIT_VARIANTS)):
            if cache_dit_available():
                methods += cache_dit_methods(self.blocks, s.steps, list(s.cache_dit))
                if s.profile and not s.device.startswith("cuda"):
                    self.notes.append("cache-dit's cache memory is not measured on the CPU (it keeps its state outside diffusers' hooks): shown as '-'.")
            else:
                self.notes.append("cache-dit: skipped (not installed; pip install 'tap-diffusion[peers]').")
        return methods

    def measure(self, method: Method) -> Measurement:
        """Generate every sample under ``method``; only the generations themselves are timed."""
        counter = BlockCounter(self.blocks_of)
        images, seconds = {}, 0.0
        try:
            with peer_output(method.family, self.peer_log, f"{method.name} {method.setting}"), method.apply(self.pipe):
                for prompt, seed in self.samples:
                    images[(prompt, seed)], took = self.generate(prompt, seed)
                    seconds += took
        finally:
            counter.remove()
        return Measurement(images, seconds, counter.calls, counter.full_steps(self.settings.steps))

    def profile(self, method: Method) -> tuple[float, int | None]:
        """FLOPs of one generation, and the peak memory its cache holds (untimed pass).

        Memory: on CUDA the allocator's peak above full compute's; on the CPU the bytes of tensors
        held in diffusers hook states after each step (tap's cache included), None for methods
        that keep their state elsewhere (cache-dit).
        """
        prompt, seed = self.samples[0]
        peak = 0

        def track(*_):
            nonlocal peak
            peak = max(peak, sum(hook_state_bytes(transformer) for transformer in self.blocks_of))

        cuda = self.settings.device.startswith("cuda")
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        with peer_output(method.family, self.peer_log, f"{method.name} {method.setting} (profile)"), method.apply(self.pipe), \
                FlopCounterMode(display=False) as flops:
            handles = [transformer.register_forward_hook(track) for transformer in self.blocks_of]
            try:
                self.generate(prompt, seed)
            finally:
                for handle in handles:
                    handle.remove()
        if cuda:
            peak = torch.cuda.max_memory_allocated()
        elif method.family == "cache-dit":
            peak = None
        return float(flops.get_total_flops()), peak

    def run(self, methods: list[Method] | None = None) -> list[Record]:
        """Measure ``methods`` (default: every tap preset and peer in the settings) against full compute.

        A method that fails keeps its error in its record. When full compute fails there is nothing
        to compare with: the rounds stop, and every record carries that error.
        """
        self.generate(*self.samples[0])  # warm-up at full length: a CPU's first long generation can be several times slower
        methods = [FULL, *(self.methods() if methods is None else methods)]
        records = {m: Record(m.name, m.setting, m.family, steps=self.settings.steps) for m in methods}
        evaluations = self._time_rounds(records)
        if records[FULL].error is None:
            self._compare(records, evaluations)
            if self.settings.profile:
                self._profile(records)
            else:
                self.notes.append("FLOPs and cache memory: not measured (no profiling generation, as with --quick): shown as '-'.")
        failed = records[FULL].error  # in the rounds or in the profiling generation
        if failed is not None:
            for record in records.values():
                record.error = failed if record is records[FULL] else f"full compute failed: {failed}"
        return list(records.values())

    def _time_rounds(self, records: dict[Method, Record]) -> dict[Method, int]:
        """The timing rounds: each method's round seconds, and from the first round its quality and full
        steps; returns each method's block evaluations (first round). Stops as soon as full compute fails."""
        methods, references, evaluations = list(records), {}, {}
        with tqdm(total=self.settings.repeats * len(methods), desc="tap bench", disable=not self.progress) as bar:
            for round_index in range(self.settings.repeats):
                shift = round_index % len(methods)
                for method in methods[shift:] + methods[:shift]:  # full compute first in the first round
                    bar.set_postfix_str(f"{method.name} {method.setting}")
                    record = records[method]
                    if record.error is None:
                        try:
                            measured = self.measure(method)
                            if round_index == 0:
                                if method is FULL:
                                    references = measured.images
                                else:
                                    record.psnr, record.ssim = quality(references, measured.images)
                                evaluations[method], record.full_steps = measured.block_calls, measured.full_steps
                        except Exception as error:
                            record.error = f"{type(error).__name__}: {error}"
                        else:
                            record.round_seconds.append(measured.seconds)
                    if records[FULL].error is not None:
                        return evaluations
                    bar.update(1)
        return evaluations

    def _compare(self, records: dict[Method, Record], evaluations: dict[Method, int]) -> None:
        """Each record's median seconds, speed-up and block-evaluation ratio against full compute's."""
        full_time = statistics.median(records[FULL].round_seconds)
        for method, record in records.items():
            if record.error is None:
                record.seconds = statistics.median(record.round_seconds)
                record.speedup = full_time / record.seconds
                record.compute_ratio = evaluations[method] / evaluations[FULL]

    def _profile(self, records: dict[Method, Record]) -> None:
        """Each record's FLOPs against full compute's and its cache memory (see :meth:`profile`);
        full compute failing here fails it, as in the rounds."""
        try:
            full_flops, full_peak = self.profile(FULL)
        except Exception as error:
            records[FULL].error = f"profile: {type(error).__name__}: {error}"
            return
        cuda = self.settings.device.startswith("cuda")
        for method, record in records.items():
            if record.error is None:
                try:
                    flops, peak = (full_flops, full_peak) if method is FULL else self.profile(method)
                except Exception as error:
                    record.error = f"profile: {type(error).__name__}: {error}"
                    continue
                record.flops_ratio = flops / full_flops
                record.cache_bytes = None if peak is None else max(peak - full_peak, 0) if cuda else peak


def device_name(device: str) -> str:
    """The accelerator's name for the record (e.g. 'NVIDIA H200'), or the processor's architecture."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"{device} ({platform.machine()}, {os.cpu_count()} cores)"


def bench_command(args) -> int:
    from tap.cli.report import benchmarks_page, markdown_table, pareto_plot, write_json

    given = dict(model=args.model, steps=args.steps[0] if args.steps else None, device=args.device, dtype=args.dtype, repeats=args.repeats,
                 frames=args.frames, height=args.height, width=args.width)
    overrides = {k: v for k, v in given.items() if v is not None}
    if args.prompts:
        overrides["prompts"] = tuple(args.prompts)
    if args.seeds:
        overrides["seeds"] = tuple(args.seeds)
    if args.intervals:
        overrides["intervals"] = tuple(args.intervals)
    if args.no_peers:
        overrides["peers"] = False
    if args.predictors:
        overrides["predictors"] = tuple(args.predictors)
    if args.methods:
        overrides["methods"] = tuple(args.methods)
    elif args.quick and args.predictors:  # --quick's own method list, plus what --predictors asks for
        overrides["methods"] = (*QUICK_METHODS, *predictor_method_names(args.predictors))
    if args.profile is not None:
        overrides["profile"] = args.profile
    settings = BenchSettings.quick(**overrides) if args.quick else BenchSettings(**overrides)
    out = Path(args.out)
    for path in (out / "bench.md", out / "peers.log", Path(args.json) if args.json else out / "bench.json", *([Path(args.doc)] if args.doc else [])):
        check_writable(path)  # before the model loads
    step_counts = list(dict.fromkeys(args.steps or [settings.steps]))
    for steps in step_counts:
        attrs.evolve(settings, steps=steps)  # refuses a bad step count before the model loads
    loaded = Bench.load(settings, peer_log=out / "peers.log")
    records, notes, plots = [], [], []
    for steps in step_counts:
        bench = loaded.with_steps(steps)
        records += bench.run()
        notes += [note for note in bench.notes if note not in notes]
        plots.append(out / ("pareto.png" if len(step_counts) == 1 else f"pareto-{steps}.png"))
        pareto_plot([r for r in records if r.steps == steps], plots[-1],
                    f"{settings.model}, {steps} steps, {settings.device} {settings.dtype}")
    meta = {"settings": {**attrs.asdict(settings), "steps": step_counts if len(step_counts) > 1 else settings.steps},
            "torch": torch.__version__, "threads": torch.get_num_threads(), "device": device_name(settings.device),
            "notes": notes, "command": "tap " + " ".join(args.argv)}
    write_json(records, Path(args.json) if args.json else out / "bench.json", meta)
    table = markdown_table(records)
    (out / "bench.md").write_text(table + "".join(f"\n{note}\n" for note in notes))
    if args.doc:
        doc = Path(args.doc)
        doc.write_text(benchmarks_page(records, meta, [os.path.relpath(plot, doc.parent) for plot in plots]))
    print(table)
    for note in notes:
        print(note)
    print(f"wrote {args.json or out / 'bench.json'}, {out / 'bench.md'}, {', '.join(map(str, plots))}, {out / 'peers.log'}")
    return 0


def add_bench_command(commands) -> None:
    parser = commands.add_parser("bench", help="tap against diffusers' cache hooks and cache-dit, side by side")
    parser.add_argument("--model", default=None, help="'demo' (default), a Hugging Face id or a local pipeline folder")
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
    parser.add_argument("--steps", type=int, nargs="+", default=None, help="step counts to measure, each in turn (default 50)")
    parser.add_argument("--prompts", nargs="+", default=None)
    parser.add_argument("--seeds", nargs="+", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None, help="interleaved timing rounds, 3 by default (the median is reported)")
    parser.add_argument("--intervals", nargs="+", type=int, default=None, help="tap's and diffusers TaylorSeer's intervals to sweep")
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None, choices=sorted(DTYPES))
    parser.add_argument("--no-peers", action="store_true", help="tap presets only")
    parser.add_argument("--methods", nargs="+", default=None, metavar="NAME",
                        help=f"run only these methods (full compute always runs): {', '.join(METHOD_NAMES)}, and with --predictors, "
                             "tap-NAME for each and tap-select")
    parser.add_argument("--predictors", nargs="+", default=None, metavar="NAME",
                        help="also run tap with each of these registered predictors alone (method tap-NAME, selector fixed) "
                             "at the default full-step rule, and with two or more, per-token selection among them (tap-select)")
    parser.add_argument("--profile", action=argparse.BooleanOptionalAction, default=None,
                        help="count FLOPs and cache memory in one more untimed generation per method (default on; off with --quick)")
    add_video_options(parser)
    parser.add_argument("--json", default=None, help="where to write the JSON records (default OUT/bench.json)")
    parser.add_argument("--out", default="tap-bench", help="folder for bench.json, bench.md, pareto.png and peers.log (what the peers print)")
    parser.add_argument("--doc", default=None, help="also write a Markdown page (e.g. docs/benchmarks.md) with the table and plot")
    parser.set_defaults(run=bench_command)
