"""The documented import path of tap's launchers for context parallelism, which live in :mod:`tap.cli.launch`."""

from tap.cli.launch import RANK_TIMEOUT_S, init_rank, spawn, split_tokens, under_torchrun

__all__ = ["RANK_TIMEOUT_S", "init_rank", "spawn", "split_tokens", "under_torchrun"]
