"""``tap tune``: search tap's configuration space on a user's model for a speed or quality target.

Three stages, each an evaluation of configurations on the same prompts and seeds against
full-compute references that tune generates itself:

1. schedules: fixed intervals and probe-driven refresh thresholds, with the default candidates;
2. selection: candidate families x distances x probes x selectors, on the best schedules of stage 1;
3. placement: the winner's full steps, listed explicitly, or the DP placement of as many full steps
   (:mod:`tap.planning`) where that scores better, each moved by up to two steps while PSNR rises
   (coordinate descent, :mod:`tap.placement`): same number of full steps, so the same speed, placed better.
   The result is a ``listed`` schedule for this step count only.

Speed is the block-evaluation speedup (deterministic: steps' worth of blocks over blocks really
run); wall-clock seconds are recorded too. Every evaluation is appended to a journal, so an
interrupted run resumes where it stopped. The winner is saved as a preset file for
``tap.enable(pipe, preset=PATH)`` and ``tap generate --preset PATH``.
"""

from __future__ import annotations

import json
from pathlib import Path

import attrs
from tqdm import tqdm

import tap
from tap.cli.bench import FULL, Bench, BenchSettings, quality
from tap.cli.generate import DTYPES
from tap.cli.peers import tap_method
from tap.config import PRESETS, TAPConfig
from tap.placement import refine_placement
from tap.planning import make_plan
from tap.runtime import build_schedule

INTERVALS = (3, 4, 5, 6, 8, 10, 12)
REFRESH = ((0.02, 6), (0.05, 8), (0.1, 10), (0.2, 12), (0.4, 16))  # (threshold, max_gap)
FAMILIES = {
    "taylor-1-2": dict(orders=(1, 2)),
    "taylor-0-2": dict(orders=(0, 1, 2)),
    "paper-family": dict(orders=(0, 1, 2), horizons=PRESETS["paper"]["horizons"]),
    "taylorseer-1-2": dict(predictor="taylorseer", orders=(1, 2)),
}
SELECTIONS = {
    **{f"token-{d}-{p}": dict(selector="token", distance=d, probe=p) for d in ("cosine", "l2", "change") for p in ("modulated-input", "first-block")},
    "global-l2": dict(selector="global", distance="l2"),
}
FIXED = {
    "fixed-taylor-1": dict(orders=(1,), selector="fixed"),
    "fixed-taylor-2": dict(orders=(2,), selector="fixed"),
    "fixed-taylorseer-2": dict(predictor="taylorseer", orders=(2,), selector="fixed"),
}


def schedules() -> dict[str, dict]:
    fixed = {f"interval={n}": dict(interval=n) for n in INTERVALS}
    refresh = {
        f"refresh={t},max_gap={g}": dict(schedule="probe-refresh", schedule_options={"threshold": t, "min_gap": 2, "max_gap": g})
        for t, g in REFRESH
    }
    return {**fixed, **refresh}


def selections() -> dict[str, dict]:
    combined = {f"{f}/{s}": {**fc, **sc} for f, fc in FAMILIES.items() for s, sc in SELECTIONS.items()}
    return {**combined, **FIXED}


@attrs.frozen
class Trial:
    """One evaluated configuration."""

    stage: str
    label: str
    config: dict
    speedup: float  # block-evaluation speedup
    seconds: float
    psnr: float
    ssim: float

    def meets(self, target_speedup: float | None, target_psnr: float | None) -> bool:
        return (target_speedup is None or self.speedup >= target_speedup) and (target_psnr is None or self.psnr >= target_psnr)


class Journal:
    """Trials so far, one JSON line each; a rerun with the same journal skips what is done."""

    def __init__(self, path: Path, samples_key: str) -> None:
        self.path, self.samples_key = path, samples_key
        self.trials: dict[str, Trial] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                entry = json.loads(line)
                if entry.pop("samples") == samples_key:
                    trial = Trial(**entry)
                    self.trials[self.key(trial.config)] = trial

    @staticmethod
    def key(config: dict) -> str:
        return json.dumps(config, sort_keys=True)

    def add(self, trial: Trial) -> None:
        self.trials[self.key(trial.config)] = trial
        with self.path.open("a") as handle:
            handle.write(json.dumps({**attrs.asdict(trial), "samples": self.samples_key}) + "\n")


class Tuner:
    def __init__(self, settings: BenchSettings, journal: Path, target_speedup: float | None, target_psnr: float | None) -> None:
        if (target_speedup is None) == (target_psnr is None):
            raise tap.ConfigError("give exactly one target: --target-speedup or --target-psnr")
        self.bench = Bench.load(settings, progress=False)
        self.target_speedup, self.target_psnr = target_speedup, target_psnr
        samples_key = json.dumps([settings.model, settings.steps, list(settings.prompts), list(settings.seeds), settings.dtype])
        self.journal = Journal(journal, samples_key)
        self.references = None  # the full-compute Measurement, made on first need

    def evaluate(self, stage: str, label: str, config: TAPConfig, bar) -> Trial:
        data = config.to_dict()
        found = self.journal.trials.get(Journal.key(data))
        if found is None:
            if self.references is None:
                self.references = self.bench.measure(FULL)
            measured = self.bench.measure(tap_method("tune", label, config))
            psnr, ssim = quality(self.references.images, measured.images)
            speedup = self.references.block_calls / max(measured.block_calls, 1)
            found = Trial(stage, label, data, speedup, measured.seconds, psnr, ssim)
            self.journal.add(found)
        bar.update(1)
        bar.set_postfix_str(f"{label}: {found.speedup:.2f}x {found.psnr:.1f} dB")
        return found

    def score(self, trial: Trial) -> tuple:
        """Higher is better: meeting the target first, then PSNR (speed target) or speed (PSNR target)."""
        meets = trial.meets(self.target_speedup, self.target_psnr)
        return (meets, trial.psnr, trial.speedup) if self.target_speedup is not None else (meets, trial.speedup, trial.psnr)

    def run(self, stage_one: dict[str, dict] | None = None, stage_two: dict[str, dict] | None = None, keep: int = 2, sweeps: int = 2) -> Trial:
        """Evaluate every schedule, then every selection on the ``keep`` best schedules, then place the
        winner's full steps (``sweeps`` passes, 0 to skip); return the best trial."""
        stage_one = schedules() if stage_one is None else stage_one
        stage_two = selections() if stage_two is None else stage_two
        with tqdm(total=len(stage_one) + keep * len(stage_two), desc="tap tune") as bar:
            first = [self.evaluate("schedule", label, TAPConfig(**options), bar) for label, options in stage_one.items()]
            best_schedules = sorted(first, key=self.score, reverse=True)[:keep]
            second = [
                self.evaluate("selection", f"{schedule.label} {label}", TAPConfig(**{**schedule_options(schedule.config), **options}), bar)
                for schedule in best_schedules
                for label, options in stage_two.items()
            ]
        best = max(first + second, key=self.score)
        return self.place(best, sweeps) if sweeps else best

    def place(self, trial: Trial, sweeps: int) -> Trial:
        """Stage 3: start from ``trial``'s full steps or, where it scores better, the DP plan of as many, then move
        each full step while the score rises (:func:`tap.placement.refine_placement`, up to ``sweeps`` passes); the
        first step stays (nothing is cached before it)."""
        num_steps = self.bench.settings.steps
        config = TAPConfig.from_dict(trial.config)
        steps = build_schedule(config).planned_full_steps(num_steps)
        if steps is None:  # a probe-driven schedule has no fixed steps to move
            return trial
        with tqdm(desc="tap tune: placement", unit="trial") as bar:
            start = trial
            planned = self.planned(config, len(steps), bar)
            if planned is not None and self.score(planned) > self.score(trial):
                start, steps = planned, list(planned.config["schedule_options"]["steps"])
            trials = {tuple(steps): start}

            def score(candidate: list[int]) -> tuple:
                if tuple(candidate) not in trials:
                    listed = config.replace(schedule="listed", schedule_options={"steps": candidate, "num_steps": num_steps})
                    trials[tuple(candidate)] = self.evaluate("placement", f"{trial.label} steps={candidate}", listed, bar)
                return self.score(trials[tuple(candidate)])

            best, _ = refine_placement(steps, score, num_steps=num_steps, warmup=config.warmup, sweeps=sweeps)
        return trials[tuple(best)]

    def planned(self, config: TAPConfig, full_steps: int, bar) -> Trial | None:
        """The DP placement of ``full_steps`` full steps for ``config``'s family (:mod:`tap.planning`) from the samples'
        full-compute generations, evaluated; None when the family is one the plan cannot score."""
        num_steps = self.bench.settings.steps
        try:
            placed = make_plan(self.bench.pipe, lambda: [self.bench.generate(*sample)[0] for sample in self.bench.samples],
                               full_steps=full_steps, num_steps=num_steps, config=config, check=False)
        except tap.ConfigError:
            return None
        return self.evaluate("placement", f"planned steps={placed.steps}", placed.config, bar)


def schedule_options(config: dict) -> dict:
    """The schedule fields of a stage-one configuration."""
    return {key: config[key] for key in ("interval", "schedule", "schedule_options")}


def tune_command(args) -> int:
    if args.placement_sweeps < 0:
        raise tap.ConfigError(f"--placement-sweeps must be >= 0 (0 keeps the winner's schedule), got {args.placement_sweeps}")
    overrides = {k: v for k, v in dict(model=args.model, steps=args.steps, device=args.device, dtype=args.dtype).items() if v is not None}
    settings = BenchSettings(prompts=tuple(args.prompts), seeds=tuple(args.seeds), repeats=1, peers=False, **overrides)
    out = Path(args.out)
    journal = Path(args.journal) if args.journal else out.with_suffix(".journal.jsonl")
    tuner = Tuner(settings, journal, args.target_speedup, args.target_psnr)
    best = tuner.run(sweeps=args.placement_sweeps)
    TAPConfig.from_dict(best.config).save(out)
    met = best.meets(args.target_speedup, args.target_psnr)
    print(f"{'best' if met else 'closest (target not met)'}: {best.label}: {best.speedup:.2f}x block-evaluation speedup, "
          f"PSNR {best.psnr:.2f} dB, SSIM {best.ssim:.4f}, {best.seconds:.2f} s for {len(settings.prompts) * len(settings.seeds)} sample(s)")
    print(f"saved preset {out}: tap.enable(pipe, preset={str(out)!r}) or tap generate --preset {out}")
    return 0 if met else 1


def add_tune_command(commands) -> None:
    parser = commands.add_parser("tune", help="search tap's configuration for a speed or quality target on your model")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--target-speedup", type=float, help="best PSNR at or above this block-evaluation speedup")
    target.add_argument("--target-psnr", type=float, help="fastest setting at or above this PSNR (dB)")
    parser.add_argument("--model", default=None, help="'demo' (default), a Hugging Face id or a local pipeline folder")
    parser.add_argument("--prompts", nargs="+", default=["A", "g"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None, choices=sorted(DTYPES))
    parser.add_argument("--out", default="tap-tuned.json", help="preset file to write")
    parser.add_argument("--journal", default=None, help="resume file (default: OUT with .journal.jsonl)")
    parser.add_argument("--placement-sweeps", type=int, default=2, help="passes of stage 3, which moves the winner's full steps (0: keep its schedule)")
    parser.set_defaults(run=tune_command)
