"""tap: Token-Adaptive Predictor acceleration for diffusion transformers.

Quick start::

    import tap
    handle = tap.enable(pipe)          # or tap.enable(pipe, tap.TAPConfig.preset("paper"))
    image = pipe("A").images[0]
    print(tap.stats(pipe))
    tap.disable(pipe)
"""

from tap.hookspecs import hookimpl, hookspec
from tap.errors import (
    AlreadyEnabledError,
    ConfigError,
    InsufficientHistoryError,
    PluginConflictError,
    TAPError,
    UnknownNameError,
    UnsupportedModelError,
)
from tap.predictor import LinearPredictor, OrderedPredictor, Predictor
from tap.probe import BlockCall, Probe, ProbeResult
from tap.distance import Distance, GramStats
from tap.selector import Selector
from tap.schedule import Schedule, StepView
from tap.adapter import Adapter
from tap.family import Candidate
from tap.config import PRESETS, TAPConfig
from tap.plugins import registry as _registry
from tap.registry import kind_functions

__version__ = "0.1.0"

predictor_names, get_predictor, register_predictor, unregister_predictor = kind_functions("predictor", _registry)
probe_names, get_probe, register_probe, unregister_probe = kind_functions("probe", _registry)
distance_names, get_distance, register_distance, unregister_distance = kind_functions("distance", _registry)
selector_names, get_selector, register_selector, unregister_selector = kind_functions("selector", _registry)
schedule_names, get_schedule, register_schedule, unregister_schedule = kind_functions("schedule", _registry)
adapter_names, get_adapter, register_adapter, unregister_adapter = kind_functions("adapter", _registry)

from tap.api import TAPHandle, TAPStats, accelerate, disable, enable, stats  # noqa: E402  (needs the registry)

__all__ = [
    "Adapter", "AlreadyEnabledError", "BlockCall", "Candidate", "ConfigError", "Distance", "GramStats",
    "InsufficientHistoryError", "LinearPredictor", "OrderedPredictor", "PRESETS", "PluginConflictError",
    "Predictor", "Probe", "ProbeResult", "Schedule", "Selector", "StepView", "TAPConfig", "TAPError",
    "TAPHandle", "TAPStats", "UnknownNameError", "UnsupportedModelError", "accelerate", "adapter_names",
    "disable", "distance_names", "enable", "get_adapter", "get_distance", "get_predictor", "get_probe",
    "get_schedule", "get_selector", "hookimpl", "hookspec", "predictor_names", "probe_names",
    "register_adapter", "register_distance", "register_predictor", "register_probe", "register_schedule",
    "register_selector", "schedule_names", "selector_names", "stats", "unregister_adapter",
    "unregister_distance", "unregister_predictor", "unregister_probe", "unregister_schedule",
    "unregister_selector",
]
