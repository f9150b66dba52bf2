"""Built-in model adapters."""

from tap import hookimpl
from tap_plugins.adapters.flux import FluxAdapter


@hookimpl
def register_adapters(register):
    register(FluxAdapter)
