"""tap: Token-Adaptive Predictor acceleration for diffusion transformers.

Quick start::

    import tap
    handle = tap.enable(pipe)          # or tap.enable(pipe, tap.TAPConfig.preset("paper"))
    image = pipe("A").images[0]
    print(tap.stats(pipe))
    tap.disable(pipe)

Names are imported on first use (PEP 562), so ``import tap`` and ``tap --version`` do not import torch.
"""

import importlib

__version__ = "0.1.0"
__distribution__ = "tap-diffusion"  # the PyPI name: "tap" is taken by an unrelated package

_KINDS = ("predictor", "probe", "distance", "selector", "schedule", "adapter")
_EXPORTS = {
    "tap.hookspecs": ("hookimpl", "hookspec"),
    "tap.errors": (
        "AlreadyEnabledError", "ConfigError", "InsufficientHistoryError", "PluginConflictError", "PluginError",
        "TAPError", "UnknownNameError", "UnsupportedModelError",
    ),
    "tap.conflicts": ("CacheConflictError",),
    "tap.predictor": ("LinearPredictor", "OrderedPredictor", "Predictor"),
    "tap.probe": ("BlockCall", "Probe", "ProbeResult"),
    "tap.distance": ("Distance", "GramStats"),
    "tap.selector": ("Selector",),
    "tap.schedule": ("Schedule", "StepView"),
    "tap.adapter": ("Adapter",),
    "tap.family": ("Candidate",),
    "tap.config": ("PRESETS", "TAPConfig"),
    "tap.plugins": tuple(f for k in _KINDS for f in (f"{k}_names", f"get_{k}", f"register_{k}", f"unregister_{k}")),
    "tap.api": ("TAPHandle", "TAPStats", "accelerate", "disable", "enable", "invalidate", "stats"),
    "tap.planning": ("plan",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    """Import a public name, or a submodule such as ``tap.plugins``, on first use."""
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(_MODULE_OF[name]), name)
        globals()[name] = value
        return value
    try:
        if not name.startswith("__"):
            return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as error:
        if error.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
