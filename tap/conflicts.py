"""Other caches on a transformer: tap is the only cache, so it refuses to stack with another one.

Two caches skipping blocks on the same model degrade the image without a word, and tap's
statistics would count blocks that never ran. This module finds diffusers' cache hooks
(FirstBlockCache, TaylorSeer, PAB, FasterCache, MagCache, SeaCache) and cache-dit on a
transformer and says how to remove them.
"""

from __future__ import annotations

from typing import Iterable

import torch

from tap.errors import TAPError

# diffusers.hooks modules whose hooks cache or skip computation across steps
DIFFUSERS_CACHE_MODULES = ("first_block_cache", "taylorseer_cache", "pyramid_attention_broadcast", "faster_cache", "mag_cache", "sea_cache")


class CacheConflictError(TAPError):
    """Another cache is on the transformer tap accelerates."""


def _diffusers_cache_hooks(modules: Iterable[torch.nn.Module]) -> list[str]:
    names = set()
    for module in modules:
        registry = getattr(module, "_diffusers_hook", None)
        for hook in getattr(registry, "hooks", {}).values():
            origin = type(hook).__module__
            if origin.startswith("diffusers.hooks.") and origin.rsplit(".", 1)[1] in DIFFUSERS_CACHE_MODULES:
                names.add(type(hook).__name__)
    return sorted(names)


def other_caches(transformer: torch.nn.Module, modules: Iterable[torch.nn.Module]) -> list[str]:
    """Each other cache found on ``transformer`` (looking at ``modules`` for hooks), with how to remove it."""
    found = []
    config = getattr(transformer, "_cache_config", None)
    if config is not None:
        found.append(f"diffusers' {type(config).__name__} (remove it with transformer.disable_cache())")
    else:
        hooks = _diffusers_cache_hooks(modules)
        if hooks:
            found.append(
                f"diffusers cache hooks {', '.join(hooks)} (remove them with "
                "diffusers.hooks.HookRegistry.check_if_exists_or_initialize(transformer).remove_hook(name))"
            )
    if getattr(transformer, "_is_cached", False):
        found.append("cache-dit (remove it with cache_dit.disable_cache(pipe))")
    return found


def refuse_other_caches(name: str, transformer: torch.nn.Module, modules: Iterable[torch.nn.Module]) -> None:
    """Raise :class:`CacheConflictError` when another cache is on ``transformer``."""
    found = other_caches(transformer, modules)
    if found:
        raise CacheConflictError(
            f"{name} ({type(transformer).__name__}) already has another cache: {'; '.join(found)}. "
            "tap is the only cache on a transformer (two would skip blocks on top of each other and "
            "degrade the image silently): remove the other cache, or tap with tap.disable."
        )
