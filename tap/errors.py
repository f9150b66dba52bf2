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
