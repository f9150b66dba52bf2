"""torch.compile with tap: tap's hooks run eagerly and what gets compiled is the blocks' bodies.

People compile in three ways: regionally (``transformer.compile_repeated_blocks()``, which calls
each block's ``Module.compile``), in place (``transformer.compile()``) and as a wrapper
(``torch.compile(transformer)``, an ``OptimizedModule``). Traced through tap's hooks, each would
graph-break or recompile at every step, so tap takes the compilation over: it keeps the compiled
wrapper off the module it was put on and compiles each block's own forward with the same
settings instead; :meth:`CompileTakeover.restore` puts every wrapper back. The few torch
internals this needs (where a compiled wrapper keeps its settings) are read through :mod:`tap._compat`.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from tap._compat import (
    compiled_call_impl,
    dynamo_context,
    in_optimized_module,
    is_dynamo_context,
    is_optimized_module,
    optimized_module_target,
    set_compiled_call_impl,
)
from tap.errors import TAPError

Compiler = Callable[[Callable], Callable]  # compiles a callable with settings the user chose

COMPILE_ORDER_HINT = "enable tap first and compile after, e.g. tap.enable(pipe); pipe.transformer.compile_repeated_blocks()"


def is_compiled_wrapper(module: Any) -> bool:
    return is_optimized_module(module)


def unwrap(module: Any) -> Any:
    """The module a ``torch.compile(module)`` wrapper holds, or the module itself."""
    return optimized_module_target(module) if is_compiled_wrapper(module) else module


def called_from_compiled_wrapper() -> bool:
    """Whether the current call came through an ``OptimizedModule``'s ``__call__``."""
    return in_optimized_module()


def compiler_of(module: torch.nn.Module) -> Compiler | None:
    """How ``module`` was compiled (``Module.compile`` or ``torch.compile``), as a compiler; None if it was not."""
    if is_compiled_wrapper(module):
        return dynamo_context(module)
    wrapper = compiled_call_impl(module)
    if wrapper is None:
        return None
    for cell in getattr(wrapper, "__closure__", None) or ():
        if is_dynamo_context(cell.cell_contents):
            return cell.cell_contents
    raise TAPError(
        f"this {type(module).__name__} was compiled before tap.enable, and tap cannot read the compile "
        f"settings from this torch {torch.__version__}; {COMPILE_ORDER_HINT}"
    )


def intercepted_compiler(*args, **kwargs) -> Compiler:
    """The compiler a ``Module.compile(*args, **kwargs)`` call asked for."""
    return lambda fn: torch.compile(fn, *args, **kwargs)


class CompileTakeover:
    """Compiled wrappers tap took off modules (and ``compile`` calls it intercepted), to put back on disable."""

    def __init__(self) -> None:
        self._call_impls: list[tuple[torch.nn.Module, Callable]] = []
        self._forwards: list[tuple[torch.nn.Module, dict]] = []
        self._intercepted: list[torch.nn.Module] = []
        self._requested: list[tuple[torch.nn.Module, tuple, dict]] = []

    def take(self, module: torch.nn.Module) -> Compiler | None:
        """Leave ``module`` uncompiled (its call stays eager) and return how it was compiled."""
        compiler = compiler_of(module)
        if compiler is None:
            return None
        if is_compiled_wrapper(module):
            saved = {key: module.__dict__[key] for key in ("forward", "_forward") if key in module.__dict__}
            self._forwards.append((module, saved))
            module.forward = optimized_module_target(module).__call__
            module.__dict__.pop("_forward", None)
        else:
            self._call_impls.append((module, compiled_call_impl(module)))
            set_compiled_call_impl(module, None)
        return compiler

    def intercept(self, module: torch.nn.Module, on_compile: Callable[[Compiler], None]) -> None:
        """Route later ``module.compile(...)`` calls to ``on_compile``; on restore they are applied as asked."""

        def compile(*args, **kwargs):
            self._requested.append((module, args, kwargs))
            on_compile(intercepted_compiler(*args, **kwargs))

        module.compile = compile
        self._intercepted.append(module)

    def restore(self) -> None:
        for module in self._intercepted:
            module.__dict__.pop("compile", None)
        for module, call_impl in self._call_impls:
            set_compiled_call_impl(module, call_impl)
        for module, saved in self._forwards:
            module.__dict__.pop("forward", None)
            module.__dict__.update(saved)
        for module, args, kwargs in self._requested:
            torch.nn.Module.compile(module, *args, **kwargs)
        self.__init__()


class BlockCompiles:
    """How one transformer's blocks are compiled while tap is on: taken over from the user's compile, now and later.

    ``compile_bodies`` holds, per block, a function compiling that block's forward with a compiler.
    """

    def __init__(self, transformer: torch.nn.Module, blocks: list[torch.nn.Module], compile_bodies: list[Callable[[Compiler], None]]) -> None:
        self.transformer, self.blocks, self.compile_bodies = transformer, blocks, compile_bodies
        self.takeover = CompileTakeover()
        self.wrapper_taken = False  # whether a torch.compile wrapper around the transformer was taken over

    def _all(self, compiler: Compiler) -> None:
        for compile_body in self.compile_bodies:
            compile_body(compiler)

    def take(self, module: torch.nn.Module) -> None:
        """Take over the compiles already made (of ``module``, a wrapper or the transformer, and of each block),
        and route later ``compile()`` calls on the transformer and its blocks here."""
        for candidate in dict.fromkeys([module, self.transformer]):
            compiler = self.takeover.take(candidate)
            if compiler is not None:
                self.wrapper_taken |= is_compiled_wrapper(candidate)
                self._all(compiler)
        for block, compile_body in zip(self.blocks, self.compile_bodies):
            compiler = self.takeover.take(block)
            if compiler is not None:
                compile_body(compiler)
        self.takeover.intercept(self.transformer, self._all)
        for block, compile_body in zip(self.blocks, self.compile_bodies):
            self.takeover.intercept(block, compile_body)

    def take_new_wrapper(self, module: Any) -> None:
        """A ``torch.compile`` wrapper of the transformer that appeared after tap.enable (as ``pipe.transformer``)."""
        if is_compiled_wrapper(module) and optimized_module_target(module) is self.transformer and not self.wrapper_taken:
            self._all(self.takeover.take(module))
            self.wrapper_taken = True

    def refuse_unseen_wrapper(self, name: str) -> None:
        """Raise when the call came through a compile wrapper tap never saw (its settings are unknown)."""
        if called_from_compiled_wrapper() and not self.wrapper_taken:
            raise TAPError(
                f"{name} is called through a torch.compile wrapper made after tap.enable, whose settings tap "
                "cannot see; give the compiled module to tap instead: tap.disable(transformer); "
                "tap.enable(torch.compile(transformer)) (or set it as pipe.transformer and enable tap on the pipeline)"
            )

    def restore(self) -> None:
        self.takeover.restore()
        self.wrapper_taken = False

