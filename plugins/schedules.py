"""Built-in schedules: a grid of full steps (the default), probe-driven refresh, and listed steps."""

import attrs

from tap import ConfigError, Schedule, hookimpl


def _interval(instance, attribute, value):
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ConfigError(f"fixed schedule: interval must be an int >= 1 or None (from the step count), got {value!r}")


@attrs.frozen
class FixedInterval(Schedule):
    """Full steps on a grid: the generation's first ``warmup`` steps, then every ``interval``-th step
    after the last warm-up step, then the last ``final_full`` steps when the step count is known.

    With ``interval=None`` (the default) the interval follows the run's step count n: the widest
    grid that still holds ``full_steps`` full steps, g = (n - 1) // (full_steps - 1), placed so that
    its last full step falls g // 2 steps before the run's last step (after the warm-up). A
    forecast's error follows how far the sampler moves between full steps, so a budget of full steps
    holds quality across step counts where a fixed interval does not, and a grid that ends half an
    interval early forecasts less far into the fast last steps (docs/research.md, section 14). A
    run whose grid would be every step, or whose step count tap cannot read, is left alone:
    computed in full.
    """

    name = "fixed"
    interval: int | None = attrs.field(default=None, validator=_interval)
    full_steps: int = attrs.field(default=9, validator=attrs.validators.ge(2))
    warmup: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    final_full: int = attrs.field(default=0, validator=attrs.validators.ge(0))

    @classmethod
    def from_config(cls, config):
        return cls(interval=config.interval, full_steps=config.full_steps, warmup=config.warmup, final_full=config.final_full,
                   **config.schedule_options)

    def interval_for(self, run_steps: int | None) -> int | None:
        """The grid's interval for a run of ``run_steps`` steps; None when it depends on a count tap does not know."""
        if self.interval is not None:
            return self.interval
        if run_steps is None:
            return None
        return max(1, (run_steps - 1) // (self.full_steps - 1))

    def left_alone(self, run_steps):
        if self.interval is not None:
            return None
        if run_steps is None:
            return (
                "cannot read this generation's step count, and the default places full steps by it, so every step is "
                "computed. Enable tap on the pipeline, call the transformer inside transformer.cache_context(name, "
                "step_index=i, num_inference_steps=n), or set interval=N"
            )
        if self.interval_for(run_steps) == 1:
            return (
                f"a run of {run_steps} steps is too short to forecast with at least {self.full_steps} full steps, so every "
                f"step is computed (set interval=N to predict anyway)"
            )
        return None

    def describe(self, run_steps):
        interval = self.interval_for(run_steps)
        if self.interval is not None:
            return f"a full step every {interval} steps (interval={interval})"
        if interval is None or interval == 1:
            return "every step computed (left alone)"
        return (f"a full step every {interval} steps, the last one {interval // 2} before the final step: the widest grid "
                f"with at least {self.full_steps} full steps in {run_steps}")

    def is_full(self, view):
        run = view.step - view.first_step  # steps since this generation began (a partial run starts late)
        if run < self.warmup:
            return True
        run_steps = None if view.num_steps is None else view.num_steps - view.first_step
        if run_steps is not None and run >= run_steps - self.final_full:
            return True
        interval = self.interval_for(run_steps)
        if interval is None:
            return True
        if self.interval is None:  # the grid ends half an interval before the last step
            return (run_steps - 1 - interval // 2 - run) % interval == 0
        return (run - (self.warmup - 1)) % interval == 0


@attrs.frozen
class ProbeRefresh(Schedule):
    """Probe-driven refresh: a full step when the probe says the cache has gone stale.

    After the warm-up, each step probes h and reads one signal (mean over tokens):
    ``signal="error"``, the chosen candidates' relative prediction error ||h_hat - h|| / ||h||;
    ``signal="change"``, the relative change ||h - h_last|| / ||h_last|| since the last full step
    (TeaCache's idea on tap's probe). The step runs in full when the signal exceeds ``threshold``,
    never sooner than ``min_gap`` steps after the last full step and always after ``max_gap``.
    Full steps thus land where the features change fastest instead of on a fixed grid.
    """

    name = "probe-refresh"
    uses_probe = True
    threshold: float = attrs.field(default=0.05, converter=float, validator=attrs.validators.gt(0.0))
    min_gap: int = attrs.field(default=2, validator=attrs.validators.ge(1))
    max_gap: int = attrs.field(default=10, validator=attrs.validators.ge(1))
    warmup: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    final_full: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    signal: str = attrs.field(default="change", validator=attrs.validators.in_(("error", "change")))

    @classmethod
    def from_config(cls, config):
        return cls(warmup=config.warmup, final_full=config.final_full, **config.schedule_options)

    def is_full(self, view):
        if view.step - view.first_step < self.warmup:
            return True
        if view.num_steps is not None and view.step >= view.num_steps - self.final_full:
            return True
        if view.since_full is not None and view.since_full < self.min_gap:
            return False
        if view.since_full is None or view.since_full >= self.max_gap:
            return True
        measured = view.measured_error() if self.signal == "error" else view.measured_change()
        return measured > self.threshold


def _sorted_steps(value):
    """A collection of ints becomes a sorted tuple without repeats; anything else is left for the validator."""
    if isinstance(value, (list, tuple, range, set, frozenset)) and all(isinstance(s, int) and not isinstance(s, bool) for s in value):
        return tuple(sorted(set(value)))
    return value


def _steps(instance, attribute, value):
    if not isinstance(value, tuple) or not value or value[0] < 0:
        raise ConfigError(f"listed schedule: steps must be a non-empty list of step indices >= 0, got {value!r}")


def _num_steps(instance, attribute, value):
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"listed schedule: num_steps must be an int >= 1 or None, got {value!r}")
    late = [s for s in instance.steps if s >= value]
    if late:
        raise ConfigError(f"listed schedule: steps {late} are not below num_steps={value} (steps count from 0)")


@attrs.frozen
class Listed(Schedule):
    """Full steps exactly at ``steps`` (plus the warm-up), e.g. a placement found by ``tap tune`` for one
    model and step count; ``num_steps``, when set, refuses generations with another step count."""

    name = "listed"
    steps: tuple[int, ...] = attrs.field(converter=_sorted_steps, validator=_steps)
    warmup: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    num_steps: int | None = attrs.field(default=None, validator=_num_steps)

    @classmethod
    def from_config(cls, config):
        return cls(warmup=config.warmup, **config.schedule_options)

    def is_full(self, view):
        if self.num_steps is not None and view.num_steps is not None and view.num_steps != self.num_steps:
            raise ConfigError(
                f"the listed schedule {list(self.steps)} was made for num_inference_steps={self.num_steps}, "
                f"but this generation has {view.num_steps} steps: generate with {self.num_steps} steps or tune again"
            )
        return view.step < self.warmup or view.step in self.steps


@hookimpl
def register_schedules(register):
    register(FixedInterval)
    register(ProbeRefresh)
    register(Listed)
