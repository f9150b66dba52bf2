"""The generic adapter, where plugins and users import it: :mod:`tap.generic_adapter` holds it."""

from tap.generic_adapter import GenericAdapter, forward_parameters, make_adapter

__all__ = ["GenericAdapter", "forward_parameters", "make_adapter"]
