"""Wiring the runtime into a transformer with diffusers' own hook registry (reversible, composable).

tap's hooks are kept out of ``torch.compile`` (they decide in Python, per step); the blocks'
bodies are compiled instead (see :mod:`tap.compile`). accelerate's offload hooks wrap a
module's ``forward`` and, under model CPU offload, are removed and put back around every
pipeline call; tap therefore sits beneath them, where that round trip leaves it in place.
"""

from __future__ import annotations

import contextlib
from typing import Callable

import torch
from diffusers.hooks import HookRegistry, ModelHook

from tap._compat import accelerate_inner_forward, drop_hook_registry, hook_registry, set_accelerate_inner_forward
from tap.compile import Compiler
from tap.errors import CopyError
from tap.probe import BlockCall
from tap.runtime import Runtime
from tap.samples import merge_outputs, split_call

TRANSFORMER_HOOK = "tap_transformer"
BLOCK_HOOK = "tap_block"


class TAPHook(ModelHook):
    """What tap's hooks share: the runtime, and a refusal to be deep-copied or pickled.

    The hook registry puts a closure on the module's forward. ``copy.deepcopy`` keeps closures as
    they are, so a copied module would run the original's hooks and count in its statistics, and
    pickle cannot store them at all. Copying or pickling a module reaches these hooks through its
    hook registry; they raise a :class:`CopyError` that says what to do instead.
    """

    def __init__(self, runtime: Runtime, model: str) -> None:
        super().__init__()
        self.runtime, self.model = runtime, model

    def __deepcopy__(self, memo):
        raise CopyError(
            f"tap is enabled on this {self.model}: a deep copy would share tap's hooks and statistics with the original. "
            "Disable tap (tap.disable(pipe) or tap.disable(transformer)), copy, then tap.enable(...) on each of the two."
        )

    def __reduce_ex__(self, protocol):
        raise CopyError(
            f"tap is enabled on this {self.model}, and tap's hooks cannot be pickled (nor saved with torch.save): "
            "disable tap first (tap.disable(pipe) or tap.disable(transformer)), or save transformer.state_dict() instead."
        )


class TransformerHook(TAPHook):
    """Counts transformer calls as steps and leaves a clean state when a call raises.

    It holds the runtime's StateManager, so ``transformer.cache_context(name)`` switches context.
    ``on_generation`` runs at the first call of each generation (checks that need not run per step).
    """

    _is_stateful = True

    def __init__(self, runtime: Runtime, model: str, on_generation: Callable[[], None]) -> None:
        super().__init__(runtime, model)
        self.states = runtime.states
        self.on_generation = on_generation

    @torch.compiler.disable
    def new_forward(self, module, *args, **kwargs):
        groups = self.runtime.sample_groups(args, kwargs)
        if groups is None:
            return self._step(args, kwargs)
        rows_in_order = torch.cat(groups)
        outputs = []
        for index, rows in enumerate(groups):
            adapter = self.runtime.adapter
            sub_args, sub_kwargs = split_call(args, kwargs, rows, len(rows_in_order), adapter.shared_arguments, adapter.batch_dims)
            with self.states.sample(index):
                outputs.append(self._step(sub_args, sub_kwargs))
        return merge_outputs(outputs, rows_in_order.argsort())

    def _step(self, args, kwargs):
        try:
            if self.runtime.begin_step(args, kwargs):
                self.on_generation()
            return self.fn_ref.original_forward(*args, **kwargs)
        except BaseException:
            self.runtime.reset()
            raise

    def reset_state(self, module):
        """diffusers calls this when a pipeline call ends: drop the caches, keep the statistics."""
        self.runtime.reset()
        return module


class BlockHook(TAPHook):
    """First block: let the runtime decide the step. Others: pass through when skipping; the last
    block reports f(x) on full steps. ``body`` is the block's forward, compiled when the user compiled."""

    def __init__(self, runtime: Runtime, model: str, first: bool, last: bool) -> None:
        super().__init__(runtime, model)
        self.first, self.last = first, last
        self.per_block = runtime.sums_blocks and not first
        self.body: Callable | None = None

    def compile_body(self, compiler: Compiler) -> None:
        self.body = compiler(self.fn_ref.original_forward)

    @torch.compiler.disable
    def new_forward(self, module, *args, **kwargs):
        run = self.body or self.fn_ref.original_forward
        if self.first:
            return self.runtime.enter(BlockCall(module, run, args, kwargs))
        skipped = self.runtime.passthrough(module, args, kwargs)
        if skipped is not None:
            return skipped
        output = run(*args, **kwargs)
        if self.per_block:
            self.runtime.after_block(module, args, kwargs, output)
        if self.last:
            self.runtime.exit(output)
        return output


@contextlib.contextmanager
def _beneath_accelerate(module: torch.nn.Module):
    """Let the hook registry edit the forward that accelerate's hook calls rather than the hook itself."""
    inner = accelerate_inner_forward(module)
    if inner is None:
        yield
        return
    outer = module.forward
    module.forward = inner
    try:
        yield
    finally:
        set_accelerate_inner_forward(module, module.forward)
        module.forward = outer


def _hook(module: torch.nn.Module, hook: ModelHook, name: str, created: list) -> None:
    if hook_registry(module) is None:
        created.append(module)
    with _beneath_accelerate(module):
        HookRegistry.check_if_exists_or_initialize(module).register_hook(hook, name)


def install(transformer: torch.nn.Module, runtime: Runtime, on_generation: Callable[[], None]) -> list[torch.nn.Module]:
    """Hook the transformer and its blocks; all or nothing. Returns the modules given a new registry."""
    created: list[torch.nn.Module] = []
    blocks, model = runtime.blocks, type(transformer).__name__
    try:
        _hook(transformer, TransformerHook(runtime, model, on_generation), TRANSFORMER_HOOK, created)
        for index, block in enumerate(blocks):
            _hook(block, BlockHook(runtime, model, first=index == 0, last=index == len(blocks) - 1), BLOCK_HOOK, created)
    except BaseException:
        uninstall(transformer, blocks, created)
        raise
    HookRegistry.check_if_exists_or_initialize(transformer).invalidate_child_registries_cache()
    return created


def block_hooks(blocks: list[torch.nn.Module]) -> list[BlockHook]:
    return [hook_registry(block).get_hook(BLOCK_HOOK) for block in blocks]


def uninstall(transformer: torch.nn.Module, blocks: list[torch.nn.Module], created: list[torch.nn.Module]) -> None:
    """Remove tap's hooks; modules that had no hook registry before tap get back their plain forward."""
    for module, name in [(transformer, TRANSFORMER_HOOK), *((b, BLOCK_HOOK) for b in blocks)]:
        registry = hook_registry(module)
        if registry is not None:
            with _beneath_accelerate(module):
                registry.remove_hook(name, recurse=False)
    for module in created:
        if not hook_registry(module).hooks:
            drop_hook_registry(module)
            bound = module.__dict__.get("forward")
            if getattr(bound, "__func__", None) is type(module).forward:
                del module.forward
    if hook_registry(transformer) is not None:
        HookRegistry.check_if_exists_or_initialize(transformer).invalidate_child_registries_cache()
