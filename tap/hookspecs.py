"""Hook specifications: the callback-style registration hooks every tap plugin may implement.

Each hook receives a ``register`` callable; the plugin calls ``register(cls)`` once per class it
provides (optionally ``register(cls, name="other-name")``). The host owns names and conflicts.
"""

import pluggy

hookspec = pluggy.HookspecMarker("tap")
hookimpl = pluggy.HookimplMarker("tap")


@hookspec
def register_predictors(register):
    """Register :class:`tap.Predictor` subclasses (how a cached feature is extrapolated)."""


@hookspec
def register_probes(register):
    """Register :class:`tap.Probe` subclasses (the cheap exact signal computed at every step)."""


@hookspec
def register_distances(register):
    """Register :class:`tap.Distance` subclasses (the proxy loss between predicted and probed features)."""


@hookspec
def register_selectors(register):
    """Register :class:`tap.Selector` subclasses (which candidate each token uses)."""


@hookspec
def register_schedules(register):
    """Register :class:`tap.Schedule` subclasses (which sampling steps run the full block stack)."""


@hookspec
def register_adapters(register):
    """Register :class:`tap.Adapter` subclasses (how one transformer class splits into embed/blocks/head)."""
