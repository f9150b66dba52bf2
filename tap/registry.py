"""Name tables for every plugin kind, and the public register/get/list functions built on them."""

from __future__ import annotations

from typing import Callable

import attrs

from tap.adapter import Adapter
from tap.distance import Distance
from tap.errors import ConfigError, PluginConflictError, UnknownNameError
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
    """A registered class and where it came from (a distribution name, or ``runtime``)."""

    cls: type
    source: str


class Registry:
    """kind -> name -> :class:`Entry`; validates classes and refuses duplicate names."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}

    def add(self, kind: str, cls: type, source: str, name: str | None = None) -> str:
        base = BASES[kind]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise TypeError(f"{source}: a {kind} must be a subclass of tap.{base.__name__}, got {cls!r}")
        name = name or getattr(cls, "name", "")
        if not name or not isinstance(name, str):
            raise TypeError(f"{source}: {kind} class {cls.__qualname__} has no `name`; set the class attribute")
        existing = self._entries[kind].get(name)
        if existing is not None and existing.cls is not cls:
            raise PluginConflictError(
                f"{kind} name {name!r} is registered twice: by {existing.source} "
                f"({existing.cls.__module__}.{existing.cls.__qualname__}) and by {source} "
                f"({cls.__module__}.{cls.__qualname__}); uninstall one, or restrict loading with TAP_LOAD_PLUGINS"
            )
        self._entries[kind][name] = Entry(cls, source)
        return name

    def remove(self, kind: str, name: str) -> None:
        if self._entries[kind].pop(name, None) is None:
            raise UnknownNameError(f"no {kind} named {name!r} is registered; registered: {self.names(kind)}")

    def get(self, kind: str, name: str) -> Entry:
        try:
            return self._entries[kind][name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {kind} {name!r}; registered {kind}s: {', '.join(self.names(kind)) or '(none)'}"
            ) from None

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries[kind])

    def entries(self, kind: str) -> dict[str, Entry]:
        return dict(self._entries[kind])


def instantiate(kind: str, cls: type, name: str, params: dict):
    """``cls(**params)``, turning a wrong parameter into an error that lists the accepted ones."""
    try:
        return cls(**params)
    except TypeError as error:
        accepted = [f.name for f in attrs.fields(cls)] if attrs.has(cls) else []
        raise ConfigError(
            f"{kind} {name!r} does not accept parameters {sorted(params)}: {error}; accepted: {accepted or 'none'}"
        ) from None


def kind_functions(kind: str, registry: Callable[[], Registry]):
    """The public ``names``, ``get``, ``register`` and ``unregister`` functions for one plugin kind."""

    def names() -> list[str]:
        return registry().names(kind)

    def get(name: str, **params):
        return instantiate(kind, registry().get(kind, name).cls, name, params)

    def register(cls: type | None = None, *, name: str | None = None):
        def add(target: type) -> type:
            registry().add(kind, target, f"{RUNTIME_SOURCE} ({target.__module__})", name)
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
