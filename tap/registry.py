"""Name tables for every plugin kind, and the public register/get/list functions built on them."""

from __future__ import annotations

import inspect
from typing import Callable

import attrs

from tap.adapter import Adapter
from tap.distance import Distance
from tap.errors import ConfigError, PluginConflictError, TAPError, UnknownNameError
from tap.predictor import Predictor
from tap.probe import Probe
from tap.schedule import Schedule
from tap.selector import Selector

BASES: dict[str, type] = {
    "predictor": Predictor,
    "probe": Probe,
    "distance": Distance,
    "selector": Selector,
    "schedule": Schedule,
    "adapter": Adapter,
}
KINDS = tuple(BASES)
RUNTIME_SOURCE = "runtime"


@attrs.frozen
class Entry:
    """A registered class, where it came from (a distribution name, or ``runtime``) and which plugin (entry point) added it."""

    cls: type
    source: str
    plugin: str | None = None

    def __str__(self) -> str:
        return f"{self.source} ({self.cls.__module__}.{self.cls.__qualname__})"


def conflict_message(kind: str, name: str, entries: list[Entry]) -> str:
    times = "twice" if len(entries) == 2 else f"{len(entries)} times"
    return (
        f"{kind} name {name!r} is registered {times}: by " + " and by ".join(map(str, entries))
        + "; uninstall one, or restrict loading with TAP_LOAD_PLUGINS"
    )


class Registry:
    """kind -> name -> :class:`Entry`; validates classes and keeps names registered twice apart as conflicts."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
        self._conflicts: dict[str, dict[str, list[Entry]]] = {kind: {} for kind in KINDS}

    @staticmethod
    def checked_name(kind: str, cls: type, source: str, name: str | None = None) -> str:
        """The name ``cls`` registers under, after checking that it is a ``kind`` class."""
        base = BASES[kind]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise ConfigError(f"{source}: a {kind} must be a subclass of tap.{base.__name__}, got {cls!r}")
        name = name or getattr(cls, "name", "")
        if not name or not isinstance(name, str):
            raise ConfigError(f"{source}: {kind} class {cls.__qualname__} has no `name`; set the class attribute or pass name=")
        return name

    def add(self, kind: str, cls: type, source: str, name: str | None = None, plugin: str | None = None, strict: bool = True) -> str:
        """Register ``cls``; a name taken by another class raises (``strict``) or is recorded as a conflict."""
        name = self.checked_name(kind, cls, source, name)
        entry = Entry(cls, source, plugin)
        existing = self._entries[kind].get(name)
        rivals = self._conflicts[kind].get(name) or ([existing] if existing is not None and existing.cls is not cls else [])
        if not rivals:
            self._entries[kind][name] = entry
        elif strict:
            raise PluginConflictError(conflict_message(kind, name, [*rivals, entry]))
        else:
            self._entries[kind].pop(name, None)
            self._conflicts[kind][name] = [*rivals, entry]
        return name

    def remove(self, kind: str, name: str) -> None:
        if self._entries[kind].pop(name, None) is None:
            raise UnknownNameError(f"no {kind} named {name!r} is registered; registered: {self.names(kind)}")

    def get(self, kind: str, name: str) -> Entry:
        if not isinstance(name, str):
            raise UnknownNameError(f"{kind} names are strings, got {name!r}; registered {kind}s: {', '.join(self.names(kind))}")
        if name in self._conflicts[kind]:
            raise PluginConflictError(conflict_message(kind, name, self._conflicts[kind][name]))
        try:
            return self._entries[kind][name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {kind} {name!r}; registered {kind}s: {', '.join(self.names(kind)) or '(none)'}"
            ) from None

    def names(self, kind: str) -> list[str]:
        """The usable names (a name in conflict is left out until the conflict is resolved)."""
        return sorted(self._entries[kind])

    def entries(self, kind: str) -> dict[str, Entry]:
        return dict(self._entries[kind])

    def name_of(self, kind: str, cls: type) -> str:
        """The name ``cls`` is registered under: its own ``name`` if registered as that, else an alias."""
        names = [name for name, entry in self._entries[kind].items() if entry.cls is cls]
        if not names:
            raise ConfigError(f"{kind} class {cls.__qualname__} is not registered; register it (tap.register_{kind}) first")
        return cls.name if getattr(cls, "name", None) in names else names[0]

    def conflicts(self) -> list[tuple[str, list[Entry]]]:
        """Every name in conflict, as (message, the entries that claim it)."""
        return [
            (conflict_message(kind, name, entries), entries)
            for kind, names in self._conflicts.items() for name, entries in sorted(names.items())
        ]


def _keyword_parameters(cls: type) -> tuple[list[str], bool]:
    """The names ``cls(...)`` accepts by keyword, and whether it also takes any other (``**kwargs``,
    or a signature that cannot be read)."""
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return [], True
    names = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return names, any(p.kind is p.VAR_KEYWORD for p in parameters)


def instantiate(kind: str, cls: type, name: str, params: dict, build: Callable[[], object] | None = None):
    """``cls(**params)`` (or ``build()``), turning any error into a ConfigError that names the plugin,
    the parameters and the accepted ones; a parameter the class does not take is called unknown."""
    try:
        return build() if build is not None else cls(**params)
    except TAPError:
        raise
    except Exception as error:  # Python's and attrs' messages name internals (``Taylor.__init__()``, extra args)
        accepted, open_ended = _keyword_parameters(cls)
        unknown = [] if open_ended or not isinstance(error, TypeError) else [p for p in params if p not in accepted]
        if unknown:
            reason = f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}"
        else:
            reason = error.args[0] if error.args and isinstance(error.args[0], str) else str(error)
        raise ConfigError(f"{kind} {name!r} rejects parameters {params!r}: {reason}; accepted: {accepted or 'none'}") from None


def kind_functions(kind: str, registry: Callable[[], Registry]):
    """The public ``names``, ``get``, ``register`` and ``unregister`` functions for one plugin kind."""

    def names() -> list[str]:
        return registry().names(kind)

    def get(name: str, **params):
        return instantiate(kind, registry().get(kind, name).cls, name, params)

    def register(cls: type | None = None, *, name: str | None = None):
        def add(target: type) -> type:
            registry().add(kind, target, f"{RUNTIME_SOURCE} ({getattr(target, '__module__', '?')})", name)
            return target

        return add if cls is None else add(cls)

    def unregister(name: str) -> None:
        registry().remove(kind, name)

    names.__doc__ = f"Sorted names of the registered {kind}s."
    get.__doc__ = f"A new {kind} instance by registered name, with ``params`` passed to its class."
    register.__doc__ = (
        f"Register a {kind} class at run time; also usable as ``@register`` or ``@register(name=...)``."
    )
    unregister.__doc__ = f"Remove a {kind} by name."
    return names, get, register, unregister
