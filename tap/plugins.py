"""Plugin discovery on pluggy: entry points in group ``tap``, each loaded on its own.

A plugin that fails to import (or whose hook raises) is reported with its error and skipped;
the others still load. ``TAP_LOAD_PLUGINS`` restricts third-party loading for reproducible runs:
unset loads everything, an empty value loads only tap's built-ins, ``a,b`` loads the built-ins
plus the entry points (or distributions) named a and b.
"""

from __future__ import annotations

import os
import warnings
from importlib.metadata import entry_points

import attrs
import pluggy

from tap import hookspecs
from tap.errors import PluginConflictError
from tap.registry import KINDS, Registry

GROUP = "tap"
ENV_VAR = "TAP_LOAD_PLUGINS"
BUILTIN_DISTRIBUTION = "tap-diffusion"
HOOKS = {kind: f"register_{kind}s" for kind in KINDS}


@attrs.frozen
class PluginInfo:
    """One entry point as ``tap list-plugins`` shows it."""

    name: str
    distribution: str
    version: str
    registered: dict[str, tuple[str, ...]] = attrs.field(factory=dict)
    error: str | None = None

    def as_dict(self) -> dict:
        return attrs.asdict(self)


@attrs.frozen
class Loaded:
    """The outcome of loading plugins: the pluggy manager, the name tables and one info per plugin."""

    manager: pluggy.PluginManager
    registry: Registry
    plugins: tuple[PluginInfo, ...]


def _allowed(entry_point, distribution: str) -> bool:
    if distribution == BUILTIN_DISTRIBUTION:
        return True
    setting = os.environ.get(ENV_VAR)
    if setting is None:
        return True
    wanted = {item.strip() for item in setting.split(",") if item.strip()}
    return entry_point.name in wanted or distribution in wanted


def _register_plugin(manager, registry: Registry, plugin, info: PluginInfo) -> PluginInfo:
    """Run one plugin's register hooks, attributing every name to it."""
    registered: dict[str, list[str]] = {}
    for kind, hook_name in HOOKS.items():
        for impl in getattr(manager.hook, hook_name).get_hookimpls():
            if impl.plugin is not plugin:
                continue

            def register(cls, name=None, _kind=kind):
                registered.setdefault(_kind, []).append(registry.add(_kind, cls, info.distribution, name))

            impl.function(register=register)
    return attrs.evolve(info, registered={kind: tuple(names) for kind, names in registered.items()})


def load() -> Loaded:
    """Discover and register every allowed plugin in the ``tap`` entry-point group."""
    manager = pluggy.PluginManager(GROUP)
    manager.add_hookspecs(hookspecs)
    registry = Registry()
    infos = []
    for entry_point in sorted(entry_points(group=GROUP), key=lambda ep: (ep.dist.name != BUILTIN_DISTRIBUTION, ep.name)):
        distribution = entry_point.dist.name if entry_point.dist else "unknown"
        info = PluginInfo(entry_point.name, distribution, entry_point.dist.version if entry_point.dist else "")
        if not _allowed(entry_point, distribution):
            continue
        try:
            plugin = entry_point.load()
            manager.register(plugin, name=f"{distribution}:{entry_point.name}")
            info = _register_plugin(manager, registry, plugin, info)
        except PluginConflictError:
            raise
        except Exception as error:  # a broken plugin must not take the others down
            info = attrs.evolve(info, error=f"{type(error).__name__}: {error}")
            warnings.warn(f"tap plugin {entry_point.name!r} from {distribution} failed to load: {info.error}")
        infos.append(info)
    return Loaded(manager, registry, tuple(infos))


_loaded: Loaded | None = None


def loaded() -> Loaded:
    """The plugins, loaded on first use."""
    global _loaded
    if _loaded is None:
        _loaded = load()
    return _loaded


def reload() -> Loaded:
    """Forget run-time registrations and load the plugins again (after installing one, in tests)."""
    global _loaded
    _loaded = None
    return loaded()


def registry() -> Registry:
    return loaded().registry


def plugin_infos() -> tuple[PluginInfo, ...]:
    return loaded().plugins
