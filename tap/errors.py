"""Exceptions raised by tap; each message names the bad value and what is allowed."""


class TAPError(Exception):
    """Base class of every error tap raises on purpose."""


class ConfigError(TAPError, ValueError):
    """A configuration value is invalid."""


class UnknownNameError(TAPError, KeyError):
    """A plugin name (predictor, probe, ...) is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class PluginConflictError(TAPError):
    """Two sources registered the same name for the same kind of plugin."""


class InsufficientHistoryError(TAPError, ValueError):
    """A predictor was asked to predict from fewer cached steps than it needs."""


class UnsupportedModelError(TAPError, TypeError):
    """No registered adapter knows how to split this transformer."""


class AlreadyEnabledError(TAPError, RuntimeError):
    """tap is already enabled on this transformer."""


class CopyError(TAPError, TypeError):
    """A module with tap enabled was deep-copied or pickled (its hooks would be shared, or cannot be stored)."""


class PluginError(TAPError, RuntimeError):
    """A plugin failed while tap ran it (or tried it on tiny tensors at tap.enable)."""


class PluginGuard:
    """``with PluginGuard(kind, name):`` turns what a plugin raises into a :class:`PluginError` naming it.

    A plain class rather than a generator context manager: it sits on the per-step path.
    """

    __slots__ = ("kind", "name")

    def __init__(self, kind: str, name: str) -> None:
        self.kind, self.name = kind, name

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, traceback) -> bool:
        if error is not None and isinstance(error, Exception) and not isinstance(error, TAPError):
            raise PluginError(f"{self.kind} {self.name!r} failed: {type(error).__name__}: {error}") from error
        return False
