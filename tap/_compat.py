"""The private attributes of diffusers, torch and cache-dit that tap reads, each behind one accessor.

tap hooks into libraries whose public API does not expose everything it needs: where diffusers
keeps a module's hook registry and a state manager's cache context, where torch keeps a compiled
module's settings, where cache-dit keeps the forward it wrapped. Those names are private and change
between releases, so they are read here and nowhere else: when a library renames one, this module
is the only place to change (as for diffusers' ``StateManager`` context, see :func:`cache_context`).
An accessor whose attribute a release has removed raises :class:`CompatError`, naming the versions
tap is tested with, instead of an AttributeError from deep inside a hook.
"""

from __future__ import annotations

import functools
import importlib.metadata
from typing import Any, Callable

import torch
from torch._dynamo import eval_frame

from tap.errors import TAPError

# The releases CI runs the suite on; tests/test_compat.py checks that the installed ones are among them.
TESTED_VERSIONS = {
    "diffusers": ("0.42.1",),
    "torch": ("2.13.0", "2.14.1"),
    "accelerate": ("1.16.0",),
    "cache-dit": ("1.5.3",),
}


class CompatError(TAPError, AttributeError):
    """A private attribute tap reads is missing from the installed library: a release tap was not tested with."""


def installed_version(library: str) -> str:
    """The installed release of ``library`` without a local build tag (torch's ``+cpu``), or "not installed"."""
    try:
        return importlib.metadata.version(library).split("+")[0]
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def missing(error: AttributeError, library: str, attribute: str) -> AttributeError:
    """What to raise for ``error`` from reading ``library``'s private ``attribute``: a CompatError naming the
    tested releases when the attribute is what is missing, else ``error`` itself."""
    if isinstance(error, CompatError) or attribute.rsplit(".", 1)[-1] not in str(error):
        return error
    compat = CompatError(
        f"tap reads {library}'s private {attribute}, which {library} {installed_version(library)} does not have; "
        f"tap is tested with {library} {', '.join(TESTED_VERSIONS[library])}: install one of those"
    )
    compat.__cause__ = error
    return compat


def reads(library: str, attribute: str):
    """Mark an accessor as reading ``library``'s private ``attribute``: its AttributeError becomes a CompatError.
    (The accessors the runtime calls at every block read inline instead, without this wrapper's extra call.)"""

    def decorate(accessor):
        @functools.wraps(accessor)
        def read(*args, **kwargs):
            try:
                return accessor(*args, **kwargs)
            except AttributeError as error:
                raise missing(error, library, attribute)

        return read

    return decorate


# diffusers


def hook_registry(module: torch.nn.Module) -> Any:
    """The diffusers ``HookRegistry`` on ``module``, or None if it has none.

    Reads diffusers' ``module._diffusers_hook``, where ``HookRegistry.check_if_exists_or_initialize``
    keeps the registry: tap looks for its own hooks and other caches' hooks without creating a registry.
    """
    return getattr(module, "_diffusers_hook", None)


@reads("diffusers", "ModelMixin._diffusers_hook")
def drop_hook_registry(module: torch.nn.Module) -> None:
    """Remove the (empty) diffusers ``HookRegistry`` from ``module``.

    Deletes diffusers' ``module._diffusers_hook``: on disable, a module that had no registry before tap
    goes back to having none, as diffusers has no public call for this.
    """
    del module._diffusers_hook


def cache_context(manager: Any) -> Any:
    """The cache context diffusers set on a hook's ``StateManager`` (a ``CacheContext`` or its name), or None.

    Reads diffusers' ``StateManager._context`` (diffusers 0.42, a ``CacheContext``) or
    ``StateManager._current_context`` (diffusers' main branch, the context's name as a string): tap
    keys its per-generation state by the context, and reads the denoising step from it.
    """
    try:
        return manager._current_context if hasattr(manager, "_current_context") else manager._context
    except AttributeError as error:
        raise missing(error, "diffusers", "StateManager._context")


def state_cache(manager: Any) -> dict[str, Any]:
    """The dict of states per context name a diffusers ``StateManager`` holds (the dict itself, not a copy).

    Reads diffusers' ``StateManager._state_cache``: tap keeps its own states there, and
    ``tap.cli.bench`` measures the tensors other caches' hooks hold there.
    """
    try:
        return manager._state_cache
    except AttributeError as error:
        raise missing(error, "diffusers", "StateManager._state_cache")


def diffusers_cache_config(transformer: torch.nn.Module) -> Any:
    """The config of the cache diffusers' ``transformer.enable_cache(...)`` put on, or None.

    Reads diffusers' ``CacheMixin._cache_config``: tap refuses to stack with another cache.
    """
    return getattr(transformer, "_cache_config", None)


def context_parallel_mesh(transformer: torch.nn.Module) -> Any:
    """The device mesh diffusers' context parallelism splits this transformer's tokens over, or None.

    Reads diffusers' ``ModelMixin._parallel_config`` and ``ContextParallelConfig._flattened_mesh``:
    tap's decisions are reduced over that group so that every rank takes the same one.
    """
    config = getattr(getattr(transformer, "_parallel_config", None), "context_parallel_config", None)
    return getattr(config, "_flattened_mesh", None)


@reads("diffusers", "QwenImageTransformerBlock._modulate")
def block_modulate(block: torch.nn.Module, x: torch.Tensor, modulation: torch.Tensor, index: Any) -> tuple:
    """Call the block's own AdaLN modulation, ``block._modulate(x, modulation, index)``.

    Calls diffusers' private ``QwenImageTransformerBlock._modulate`` (and its kin in other blocks): the
    first-block probe reproduces the block's modulated input exactly, per-token index included.
    """
    return block._modulate(x, modulation, index)


# torch


def is_optimized_module(module: Any) -> bool:
    """Whether ``module`` is a ``torch.compile(module)`` wrapper (torch's ``OptimizedModule``, in the private ``torch._dynamo``)."""
    return isinstance(module, eval_frame.OptimizedModule)


@reads("torch", "OptimizedModule._orig_mod")
def optimized_module_target(wrapper: Any) -> torch.nn.Module:
    """The module a ``torch.compile`` wrapper holds.

    Reads torch's ``OptimizedModule._orig_mod``: tap hooks the module itself, not the wrapper.
    """
    return wrapper._orig_mod


@reads("torch", "OptimizedModule.dynamo_ctx")
def dynamo_context(wrapper: Any) -> Callable[[Callable], Callable]:
    """The compiler (a ``_TorchDynamoContext``, with the user's settings) of a ``torch.compile`` wrapper.

    Reads torch's ``OptimizedModule.dynamo_ctx``: tap compiles the blocks' bodies with the same settings.
    """
    return wrapper.dynamo_ctx


def is_dynamo_context(value: Any) -> bool:
    """Whether ``value`` is a compiler made by ``torch.compile`` (torch's private ``_TorchDynamoContext``).

    tap looks for it in the closure of a ``Module.compile``'d module's call, which holds the settings.
    """
    return isinstance(value, eval_frame._TorchDynamoContext)


def in_optimized_module() -> bool:
    """Whether the current call came through an ``OptimizedModule``'s ``__call__``.

    Reads torch's ``torch._dynamo.eval_frame._in_optimized_module`` (False where a torch lacks it): tap
    refuses a call through a compile wrapper whose settings it never saw.
    """
    return bool(getattr(eval_frame, "_in_optimized_module", False))


def compiled_call_impl(module: torch.nn.Module) -> Callable | None:
    """The compiled call ``Module.compile`` put on ``module``, or None.

    Reads torch's ``nn.Module._compiled_call_impl``: tap takes it off (the module's call stays eager)
    and reads the compile settings from it.
    """
    return getattr(module, "_compiled_call_impl", None)


def set_compiled_call_impl(module: torch.nn.Module, call_impl: Callable | None) -> None:
    """Set torch's ``nn.Module._compiled_call_impl``: None leaves the module eager; on disable, tap puts the saved one back."""
    module._compiled_call_impl = call_impl


# accelerate


def accelerate_inner_forward(module: torch.nn.Module) -> Callable | None:
    """The module's own forward under accelerate's offloading hook, or None when accelerate did not wrap it.

    Reads accelerate's ``module._hf_hook`` and ``module._old_forward`` (``add_hook_to_module`` keeps
    the original forward there): tap's hooks go beneath accelerate's, so offloading still moves the weights.
    """
    outer = getattr(module.__dict__.get("forward"), "func", None)
    if hasattr(module, "_hf_hook") and getattr(outer, "__module__", "") == "accelerate.hooks":
        return getattr(module, "_old_forward", None)
    return None


def set_accelerate_inner_forward(module: torch.nn.Module, forward: Callable) -> None:
    """Set accelerate's ``module._old_forward``, the forward its offloading hook calls."""
    module._old_forward = forward


# cache-dit


def cache_dit_cached(transformer: torch.nn.Module) -> bool:
    """Whether cache-dit's cache is on ``transformer``.

    Reads cache-dit's ``transformer._is_cached``: tap refuses to stack with another cache.
    """
    return bool(getattr(transformer, "_is_cached", False))


def cache_dit_original_forward(transformer: torch.nn.Module) -> Callable | None:
    """The forward cache-dit saved to restore when its cache is removed, or None.

    Reads cache-dit's ``transformer._original_forward``: enabled after tap, cache-dit saved tap's hooked forward.
    """
    return getattr(transformer, "_original_forward", None)


def set_cache_dit_original_forward(transformer: torch.nn.Module, forward: Callable) -> None:
    """Set cache-dit's ``transformer._original_forward``, the forward ``cache_dit.disable_cache`` restores."""
    transformer._original_forward = forward
