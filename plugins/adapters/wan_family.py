"""Adapters of one family of diffusers transformers (see docs/adapters.md)."""

ADAPTERS = ()
