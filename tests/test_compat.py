"""tap._compat: the one module that reads private attributes of diffusers, torch and cache-dit."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from diffusers.hooks.hooks import CacheContext, StateManager

from tap import TAPError
from tap._compat import (
    TESTED_VERSIONS,
    CompatError,
    accelerate_inner_forward,
    cache_context,
    dynamo_context,
    installed_version,
    state_cache,
)
from tap.state import DEFAULT_CONTEXT, ContextStates, GenerationState

ROOT = Path(__file__).resolve().parents[1]

# private names of diffusers, torch and cache-dit that only tap/_compat.py may read
FOREIGN_PRIVATE = (
    "_diffusers_hook", "_state_cache", "_context", "_current_context", "_compiled_call_impl",
    "dynamo_ctx", "_in_optimized_module", "_is_cached", "_original_forward", "_orig_mod", "_hf_hook", "_old_forward",
    "_modulate", "_cache_config", "_parallel_config", "_flattened_mesh",
)
# read as an attribute (x._context) or named in a string (getattr(x, "_context")); a name merely ending
# in one of these (cache_context, set_compiled_call_impl, self._contexts) is not a read
READ = re.compile(r"""[.'"](%s)\b(?!['"]?\w)""" % "|".join(map(re.escape, FOREIGN_PRIVATE)))


class MainBranchStates(ContextStates):
    """ContextStates as on diffusers' main branch, where StateManager keeps the context's name in ``_current_context``."""

    def __init__(self) -> None:
        super().__init__()
        del self._context
        self._current_context = None

    def set_context(self, name) -> None:
        self._current_context = name


def test_cache_context_reads_diffusers_0_42_name():
    manager = StateManager(GenerationState)
    assert cache_context(manager) is None
    context = CacheContext("cond", step_index=3)
    manager.set_context(context)
    assert cache_context(manager) is context
    assert state_cache(manager) is vars(manager)["_state_cache"]


def test_cache_context_reads_diffusers_main_name():
    states = MainBranchStates()
    assert not hasattr(states, "_context")
    assert cache_context(states) is None
    states.set_context("uncond")
    assert cache_context(states) == "uncond"


def test_context_states_key_by_either_context():
    for states, context in ((ContextStates(), CacheContext("cond")), (MainBranchStates(), "cond")):
        assert states.current is None
        default = states.get_state()
        states.set_context(context)
        assert states.current is context
        cond = states.get_state()
        assert cond is not default and states.get_state() is cond
        assert set(states.states()) == {DEFAULT_CONTEXT, "cond"}


def test_regex_finds_reads_and_only_reads():
    assert READ.search("name = getattr(self._context, 'name', None)")
    assert READ.search('registry = getattr(module, "_diffusers_hook", None)')
    assert READ.search("return wrapper.dynamo_ctx")
    assert READ.search("manager._current_context")
    for line in ("with transformer.cache_context('cond'):", "set_compiled_call_impl(module, None)", "self._contexts = {}",
                 "self._sample = None", "x = dynamo_context(module)", "getattr(m, '_context_name')"):
        assert not READ.search(line), line


def test_foreign_private_names_are_read_in_tap_compat_only():
    sources = [*sorted((ROOT / "tap").rglob("*.py")), *sorted((ROOT / "plugins").rglob("*.py"))]
    assert ROOT / "tap" / "_compat.py" in sources
    reads = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sources
        if path != ROOT / "tap" / "_compat.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if READ.search(line)
    ]
    assert not reads, "read these through tap._compat:\n" + "\n".join(reads)


def test_the_private_names_tap_reads_exist_in_the_installed_diffusers_and_torch():
    """If a release renames one of these, this test names it (and tap._compat is the one place to change)."""
    from diffusers import FluxTransformer2DModel
    from diffusers.hooks import HookRegistry
    from torch._dynamo import eval_frame

    module = torch.nn.Linear(2, 2)
    HookRegistry.check_if_exists_or_initialize(module)
    assert hasattr(module, "_diffusers_hook")
    manager = StateManager(GenerationState)
    assert hasattr(manager, "_state_cache")
    assert hasattr(manager, "_context") or hasattr(manager, "_current_context")
    assert hasattr(torch.nn.Module(), "_compiled_call_impl")
    assert hasattr(eval_frame, "_in_optimized_module") and hasattr(eval_frame, "_TorchDynamoContext")
    compiled = torch.compile(torch.nn.Linear(2, 2))
    assert hasattr(compiled, "dynamo_ctx") and hasattr(compiled, "_orig_mod")
    assert hasattr(FluxTransformer2DModel, "_cache_config")  # CacheMixin's class attribute
    from accelerate.hooks import ModelHook as AccelerateHook
    from accelerate.hooks import add_hook_to_module
    from diffusers.models.transformers.transformer_qwenimage import QwenImageTransformerBlock
    from diffusers.models.transformers.transformer_qwenimage21 import QwenImage21TransformerBlock

    offloaded = add_hook_to_module(torch.nn.Linear(2, 2), AccelerateHook())
    assert hasattr(offloaded, "_hf_hook") and hasattr(offloaded, "_old_forward")
    assert accelerate_inner_forward(offloaded) is offloaded._old_forward
    assert accelerate_inner_forward(torch.nn.Linear(2, 2)) is None
    assert callable(QwenImageTransformerBlock._modulate) and callable(QwenImage21TransformerBlock._modulate)


def test_the_installed_libraries_are_releases_tap_is_tested_with():
    """Upgrading one of these means running the suite on it and adding it to TESTED_VERSIONS."""
    for library, tested in TESTED_VERSIONS.items():
        assert installed_version(library) in (*tested, "not installed"), (library, installed_version(library), tested)


def test_a_missing_private_attribute_is_a_tap_error_naming_the_tested_versions():
    class Renamed:  # a StateManager of a release that keeps neither _context nor _current_context
        pass

    with pytest.raises(CompatError, match=r"diffusers's private StateManager\._context.*tested with diffusers 0\.42\.1") as raised:
        cache_context(Renamed())
    assert isinstance(raised.value, TAPError) and isinstance(raised.value.__cause__, AttributeError)
    with pytest.raises(CompatError, match=r"torch's private OptimizedModule\.dynamo_ctx.*tested with torch 2\.13\.0, 2\.14\.1"):
        dynamo_context(torch.nn.Linear(2, 2))


def test_an_attribute_error_from_elsewhere_stays_itself():
    class Manager:
        @property
        def _context(self):
            raise AttributeError("'NoneType' object has no attribute 'name'")

    with pytest.raises(AttributeError, match="no attribute 'name'") as raised:
        cache_context(Manager())
    assert not isinstance(raised.value, CompatError)
