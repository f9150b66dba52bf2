"""Wiring the runtime into a transformer with diffusers' own hook registry (reversible, composable)."""

from __future__ import annotations

import torch
from diffusers.hooks import HookRegistry, ModelHook

from tap.probe import BlockCall
from tap.runtime import Runtime

TRANSFORMER_HOOK = "tap_transformer"
BLOCK_HOOK = "tap_block"


class TransformerHook(ModelHook):
    """Counts transformer calls as steps and leaves a clean state when a call raises.

    It holds the runtime's StateManager, so ``transformer.cache_context(name)`` switches context.
    """

    _is_stateful = True

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.runtime = runtime
        self.states = runtime.states

    def new_forward(self, module, *args, **kwargs):
        self.runtime.begin_step(args, kwargs)
        try:
            return self.fn_ref.original_forward(*args, **kwargs)
        except BaseException:
            self.runtime.abort()
            raise

    def reset_state(self, module):
        """diffusers calls this when a pipeline call ends: drop the caches, keep the statistics."""
        self.runtime.release()
        return module


class BlockHook(ModelHook):
    """First block: let the runtime decide the step. Others: pass through when skipping; the last
    block reports f(x) on full steps."""

    def __init__(self, runtime: Runtime, first: bool, last: bool) -> None:
        super().__init__()
        self.runtime, self.first, self.last = runtime, first, last

    def new_forward(self, module, *args, **kwargs):
        run = self.fn_ref.original_forward
        if self.first:
            return self.runtime.enter(BlockCall(module, run, args, kwargs))
        skipped = self.runtime.passthrough(args, kwargs)
        if skipped is not None:
            return skipped
        output = run(*args, **kwargs)
        if self.last:
            self.runtime.exit(output)
        return output


def _hook(module: torch.nn.Module, hook: ModelHook, name: str, created: list) -> None:
    if not hasattr(module, "_diffusers_hook"):
        created.append(module)
    HookRegistry.check_if_exists_or_initialize(module).register_hook(hook, name)


def install(transformer: torch.nn.Module, runtime: Runtime) -> list[torch.nn.Module]:
    """Hook the transformer and its blocks; all or nothing. Returns the modules given a new registry."""
    created: list[torch.nn.Module] = []
    blocks = runtime.blocks
    try:
        _hook(transformer, TransformerHook(runtime), TRANSFORMER_HOOK, created)
        for index, block in enumerate(blocks):
            _hook(block, BlockHook(runtime, first=index == 0, last=index == len(blocks) - 1), BLOCK_HOOK, created)
    except BaseException:
        uninstall(transformer, blocks, created)
        raise
    HookRegistry.check_if_exists_or_initialize(transformer).invalidate_child_registries_cache()
    return created


def uninstall(transformer: torch.nn.Module, blocks: list[torch.nn.Module], created: list[torch.nn.Module]) -> None:
    """Remove tap's hooks; modules that had no hook registry before tap get back their plain forward."""
    for module, name in [(transformer, TRANSFORMER_HOOK), *((b, BLOCK_HOOK) for b in blocks)]:
        registry = getattr(module, "_diffusers_hook", None)
        if registry is not None:
            registry.remove_hook(name, recurse=False)
    for module in created:
        if not module._diffusers_hook.hooks:
            del module._diffusers_hook
            bound = module.__dict__.get("forward")
            if getattr(bound, "__func__", None) is type(module).forward:
                del module.forward
    if hasattr(transformer, "_diffusers_hook"):
        HookRegistry.check_if_exists_or_initialize(transformer).invalidate_child_registries_cache()
