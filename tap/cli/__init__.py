"""The user tools: the ``tap`` command line and what its commands need (generate, bench, peers, tune,
plan, reports, metrics, launchers). The library (``tap.enable``, ``tap.plan``) never imports them."""

from tap.cli.app import main

__all__ = ["main"]
