"""Built-in schedules: a fixed interval after a warm-up, with optional final full steps."""

import attrs

from tap import Schedule, hookimpl


@attrs.frozen
class FixedInterval(Schedule):
    """Full steps: 0..warmup-1, then every ``interval``-th step after the last warm-up step,
    then the last ``final_full`` steps when the step count is known."""

    name = "fixed"
    interval: int = attrs.field(default=6, validator=attrs.validators.ge(1))
    warmup: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    final_full: int = attrs.field(default=0, validator=attrs.validators.ge(0))

    @classmethod
    def from_config(cls, config):
        return cls(interval=config.interval, warmup=config.warmup, final_full=config.final_full, **config.schedule_options)

    def is_full(self, view):
        if view.step < self.warmup:
            return True
        if view.num_steps is not None and view.step >= view.num_steps - self.final_full:
            return True
        return (view.step - (self.warmup - 1)) % self.interval == 0


@hookimpl
def register_schedules(register):
    register(FixedInterval)
