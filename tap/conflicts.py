"""Other caches on a transformer: tap is the only cache, so it refuses to stack with another one.

Two caches skipping blocks on the same model degrade the image without a word, and tap's
statistics would count blocks that never ran. This module finds diffusers' cache hooks
(FirstBlockCache, TaylorSeer, PAB, FasterCache, MagCache, SeaCache) and cache-dit on a
transformer and says how to remove them.
"""

from __future__ import annotations

from typing import Iterable

import torch

from tap._compat import cache_dit_cached, cache_dit_original_forward, diffusers_cache_config, hook_registry, set_cache_dit_original_forward
from tap.errors import TAPError

# diffusers.hooks modules whose hooks cache or skip computation across steps
DIFFUSERS_CACHE_MODULES = ("first_block_cache", "taylorseer_cache", "pyramid_attention_broadcast", "faster_cache", "mag_cache", "sea_cache")


class CacheConflictError(TAPError):
    """Another cache is on the transformer tap accelerates."""


def _diffusers_cache_hooks(modules: Iterable[torch.nn.Module]) -> list[str]:
    names = set()
    for module in modules:
        registry = hook_registry(module)
        for hook in getattr(registry, "hooks", {}).values():
            origin = type(hook).__module__
            if origin.startswith("diffusers.hooks.") and origin.rsplit(".", 1)[1] in DIFFUSERS_CACHE_MODULES:
                names.add(type(hook).__name__)
    return sorted(names)


def other_caches(transformer: torch.nn.Module, modules: Iterable[torch.nn.Module], tap_on: bool) -> list[str]:
    """Each other cache found on ``transformer`` (looking at ``modules`` for hooks), with how to remove it;
    ``tap_on`` when tap is enabled there already, so the other cache came after it."""
    found = []
    config = diffusers_cache_config(transformer)
    if config is not None:
        found.append(f"diffusers' {type(config).__name__} (remove it with transformer.disable_cache())")
    else:
        hooks = _diffusers_cache_hooks(modules)
        if hooks:
            found.append(
                f"diffusers cache hooks {', '.join(hooks)} (remove them with "
                "diffusers.hooks.HookRegistry.check_if_exists_or_initialize(transformer).remove_hook(name))"
            )
    if cache_dit_cached(transformer):
        found.append(CACHE_DIT_AFTER_TAP if tap_on else CACHE_DIT_BEFORE_TAP)
    return found


# cache-dit saves the forward it wraps, to restore it. Enabled after tap, it saves tap's hooked forward, which it
# can neither restore while tap is on nor keep once tap is gone: tap goes first (see release_to_cache_dit).
CACHE_DIT_BEFORE_TAP = "cache-dit (remove it with cache_dit.disable_cache(pipe))"
CACHE_DIT_AFTER_TAP = (
    "cache-dit, enabled after tap (it cannot be removed while tap is on: remove both, tap first, with "
    "tap.disable(pipe) then cache_dit.disable_cache(pipe), and enable again the one you want)"
)


def refuse_other_caches(name: str, transformer: torch.nn.Module, modules: Iterable[torch.nn.Module], tap_on: bool) -> None:
    """Raise :class:`CacheConflictError` when another cache is on ``transformer`` (``tap_on``: tap is enabled there)."""
    found = other_caches(transformer, modules, tap_on)
    if found:
        then = "Remove it as said" if tap_on else "Remove it, then call tap.enable again"
        raise CacheConflictError(
            f"{name} ({type(transformer).__name__}) already has another cache: {'; '.join(found)}. "
            "tap is the only cache on a transformer: two would skip blocks on top of each other and "
            f"degrade the image silently. {then}."
        )


def release_to_cache_dit(transformer: torch.nn.Module, hooked_forward) -> None:
    """Once tap is removed from ``transformer``: where cache-dit, enabled after tap, saved tap's ``hooked_forward``
    to restore, give it the transformer's own forward instead. cache-dit rebinds what it saved with ``__get__``,
    which a ``functools.partial`` lacks, so ``cache_dit.disable_cache`` would raise AttributeError (cache-dit 1.5.3)."""
    if hooked_forward is not None and cache_dit_original_forward(transformer) is hooked_forward:
        set_cache_dit_original_forward(transformer, transformer.forward)
