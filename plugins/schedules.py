"""Built-in schedules: a fixed interval after a warm-up, with optional final full steps."""

import attrs

from tap import ConfigError, Schedule, hookimpl


@attrs.frozen
class FixedInterval(Schedule):
    """Full steps: the generation's first ``warmup`` steps, then every ``interval``-th step after
    the last warm-up step, then the last ``final_full`` steps when the step count is known."""

    name = "fixed"
    interval: int = attrs.field(default=6, validator=attrs.validators.ge(1))
    warmup: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    final_full: int = attrs.field(default=0, validator=attrs.validators.ge(0))

    @classmethod
    def from_config(cls, config):
        return cls(interval=config.interval, warmup=config.warmup, final_full=config.final_full, **config.schedule_options)

    def is_full(self, view):
        run = view.step - view.first_step  # steps since this generation began (a partial run starts late)
        if run < self.warmup:
            return True
        if view.num_steps is not None and view.step >= view.num_steps - self.final_full:
            return True
        return (run - (self.warmup - 1)) % self.interval == 0


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
