"""tap-odd: a deliberately odd but valid tap plugin.

Each oddity is legal and something a careless host or test could trip on: the entry point
(``odd-one``), distribution (``tap-odd``) and module (``tap_odd``) names differ; a predictor is
registered only under aliases, one of which (``blend``) sorts before every built-in; it is neither
an attrs class nor linear, and declares ``history`` as a plain class attribute; one hook is found
by ``specname`` under another function name, next to a second implementation of the same hook;
one hook takes no argument (pluggy lets an implementation accept fewer); the schedule is a plain
class that reads ``TAPConfig.warmup`` in its own ``from_config``.
"""

import tap


class Blend(tap.Predictor):
    """The mean of the last two cached values: exact for constants only."""

    name = "odd-blend"  # never registered under this name
    history = 2
    exact_degree = 0

    def _predict(self, steps, values, target):
        return values.mean(dim=0)

    def degrade(self, available):
        return tap.get_predictor("reuse")


class EveryThird(tap.Schedule):
    """Full steps during the warm-up, then every third step from ``offset``."""

    name = "odd-every-third"

    def __init__(self, warmup=1, offset=0):
        self.warmup, self.offset = warmup, offset

    @classmethod
    def from_config(cls, config):
        return cls(config.warmup, **config.schedule_options)

    def is_full(self, view):
        return view.step < self.warmup or (view.step - self.offset) % 3 == 0


@tap.hookimpl(specname="register_predictors")
def aliases(register):
    register(Blend, name="blend")


@tap.hookimpl(specname="register_predictors", tryfirst=True)
def more_aliases(register):
    register(Blend, "odd-mean")


@tap.hookimpl
def register_schedules(register):
    register(EveryThird)


@tap.hookimpl
def register_selectors():
    """Registers nothing and takes no argument."""
