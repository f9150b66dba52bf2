"""Plugin discovery on pluggy: entry points in group ``tap``, each loaded on its own.

A plugin that fails to import, whose hook raises, or that has a misspelled hook is reported with
its error and registers nothing; the others still load. A name two plugins register is kept as a
conflict, refused only where it is used. ``TAP_LOAD_PLUGINS`` restricts third-party loading for
reproducible runs: unset loads everything, an empty value loads only tap's built-ins, ``a,b``
loads the built-ins plus the entry points (or distributions) named a and b.
"""

from __future__ import annotations

import inspect
import os
import warnings
from importlib.metadata import entry_points

import attrs
import pluggy

from tap import __distribution__ as BUILTIN_DISTRIBUTION
from tap import hookspecs
from tap.registry import KINDS, Registry, kind_functions

GROUP = "tap"
ENV_VAR = "TAP_LOAD_PLUGINS"
HOOKS = {kind: f"register_{kind}s" for kind in KINDS}


@attrs.frozen
class PluginInfo:
    """One entry point as ``tap list-plugins`` shows it; ``conflicts`` are the names it shares with another source."""

    name: str
    distribution: str
    version: str
    registered: dict[str, tuple[str, ...]] = attrs.field(factory=dict)
    covers: dict[str, tuple[str, ...]] = attrs.field(factory=dict)  # adapter name -> transformer classes it handles
    error: str | None = None
    conflicts: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return attrs.asdict(self)


@attrs.frozen
class Loaded:
    """The outcome of loading plugins: the pluggy manager, the name tables and one info per plugin."""

    manager: pluggy.PluginManager
    registry: Registry
    plugins: tuple[PluginInfo, ...]


def _wanted() -> set[str] | None:
    setting = os.environ.get(ENV_VAR)
    return None if setting is None else {item.strip() for item in setting.split(",") if item.strip()}


def _check_hooks(manager: pluggy.PluginManager, plugin) -> None:
    """Refuse a plugin with a misspelled hook: a ``register_*`` function pluggy would never call."""
    try:
        manager.check_pending()  # marked with @tap.hookimpl, but no such hook
    except pluggy.PluginValidationError as error:
        raise pluggy.PluginValidationError(plugin, f"{error}; tap's hooks: {', '.join(HOOKS.values())}") from None
    for attribute in dir(plugin):
        function = getattr(plugin, attribute, None)
        if not attribute.startswith("register_") or not callable(function):
            continue
        if inspect.ismodule(plugin) and getattr(function, "__module__", None) != plugin.__name__:
            continue  # imported from elsewhere, e.g. tap.register_predictor
        if manager.parse_hookimpl_opts(plugin, attribute) is None:
            reason = "is not marked @tap.hookimpl" if attribute in HOOKS.values() else f"is not a tap hook ({', '.join(HOOKS.values())})"
            raise pluggy.PluginValidationError(plugin, f"function {attribute}() {reason}")


def _collect(manager: pluggy.PluginManager, plugin, source: str) -> list[tuple[str, type, str]]:
    """Run one plugin's register hooks into a list of (kind, class, name), checking each class."""
    others = [other for other in manager.get_plugins() if other is not plugin]
    collected: list[tuple[str, type, str]] = []
    for kind, hook_name in HOOKS.items():
        def register(cls, name=None, _kind=kind):
            collected.append((_kind, cls, Registry.checked_name(_kind, cls, source, name)))

        manager.subset_hook_caller(hook_name, others)(register=register)
    return collected


def _load_one(manager: pluggy.PluginManager, registry: Registry, entry_point, info: PluginInfo) -> PluginInfo:
    """Import one entry point and register all of its classes, or none if anything fails."""
    plugin = entry_point.load()
    manager.register(plugin, name=f"{info.distribution}:{info.name}")
    try:
        _check_hooks(manager, plugin)
        collected = _collect(manager, plugin, info.distribution)
    except BaseException:
        manager.unregister(plugin)
        raise
    registered: dict[str, list[str]] = {}
    covers: dict[str, tuple[str, ...]] = {}
    for kind, cls, name in collected:
        registry.add(kind, cls, info.distribution, name, plugin=info.name, strict=False)
        registered.setdefault(kind, []).append(name)
        if kind == "adapter":
            covers[name] = tuple(getattr(cls, "transformer_classes", ()))
    return attrs.evolve(info, registered={kind: tuple(names) for kind, names in registered.items()}, covers=covers)


def load() -> Loaded:
    """Discover and register every allowed plugin in the ``tap`` entry-point group."""
    manager = pluggy.PluginManager(GROUP)
    manager.add_hookspecs(hookspecs)
    registry = Registry()
    wanted, seen, infos = _wanted(), set(), []
    for entry_point in sorted(entry_points(group=GROUP), key=lambda ep: (ep.dist is None or ep.dist.name != BUILTIN_DISTRIBUTION, ep.name)):
        distribution = entry_point.dist.name if entry_point.dist else "unknown"
        seen |= {entry_point.name, distribution}
        if distribution != BUILTIN_DISTRIBUTION and wanted is not None and not {entry_point.name, distribution} & wanted:
            continue
        info = PluginInfo(entry_point.name, distribution, entry_point.dist.version if entry_point.dist else "")
        try:
            info = _load_one(manager, registry, entry_point, info)
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # SystemExit included: a broken plugin must not take the others down
            info = attrs.evolve(info, error=f"{type(error).__name__}: {error}")
            warnings.warn(f"tap plugin {entry_point.name!r} from {distribution} failed to load: {info.error}", stacklevel=2)
        infos.append(info)
    if wanted is not None and wanted - seen:
        warnings.warn(f"{ENV_VAR} names {sorted(wanted - seen)}, which no installed tap plugin has; installed: {sorted(seen)}", stacklevel=2)
    conflicts = registry.conflicts()
    for message, _ in conflicts:
        warnings.warn(message, stacklevel=2)
    infos = [
        attrs.evolve(info, conflicts=tuple(m for m, entries in conflicts if any(e.plugin == info.name and e.source == info.distribution for e in entries)))
        for info in infos
    ]
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


predictor_names, get_predictor, register_predictor, unregister_predictor = kind_functions("predictor", registry)
probe_names, get_probe, register_probe, unregister_probe = kind_functions("probe", registry)
distance_names, get_distance, register_distance, unregister_distance = kind_functions("distance", registry)
selector_names, get_selector, register_selector, unregister_selector = kind_functions("selector", registry)
schedule_names, get_schedule, register_schedule, unregister_schedule = kind_functions("schedule", registry)
adapter_names, get_adapter, register_adapter, unregister_adapter = kind_functions("adapter", registry)
