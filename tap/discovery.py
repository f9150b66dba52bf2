"""Discovery: an adapter for a transformer class no adapter names, found by inspecting the model.

tap looks for the shape most diffusers DiTs share (see :mod:`tap.generic_adapter`):
ModuleLists of blocks that each hold an attention module, called in turn by the transformer's
``forward``; each block takes the image tokens under a known name and returns them alone or in a
tuple of its own arguments. What it finds is logged in one line. What it cannot resolve is named
in an :class:`~tap.errors.UnsupportedModelError` with the way to write an adapter instead. The
first full step checks what the blocks really return before any step is predicted.
"""

from __future__ import annotations

import ast
import inspect
import logging
import re
import textwrap

import torch

from tap.adapter import DOCS_PAGE
from tap.errors import UnsupportedModelError
from tap.generic_adapter import GenericAdapter, forward_parameters

logger = logging.getLogger("tap")

IMAGE_NAMES = ("hidden_states", "x", "visual_embed", "vis")  # what a block calls the image tokens
TEXT_STREAM = "encoder"  # a returned stream named so is the text, which heads do not read; others are predicted
SIDE_LISTS = ("refiner", "text", "txt", "context", "caption", "audio", "vace", "face")  # lists that feed the stack, not part of it
TIMESTEP_NAMES = ("timestep", "timesteps", "t")
LATENT_NAMES = ("hidden_states", "x", "latents", "sample")
CONDITIONING_NAMES = ("temb", "emb", "adaln_input", "timestep", "time_embed")


def discover(transformer: torch.nn.Module):
    """A :class:`~tap.generic_adapter.GenericAdapter` subclass for ``transformer``, or an error naming what is missing."""
    name = type(transformer).__name__
    source = _forward_source(type(transformer))
    lists = _block_lists(transformer, source)
    if not lists:
        raise _cannot(name, "no ModuleList of attention blocks called by its forward")
    held = _block_dicts(transformer, source)
    if held:
        raise _cannot(name, f"the order of the blocks held in {', '.join(held)} (a ModuleDict)")
    image = _image_name(_first(transformer, lists[0]))
    outputs = {}
    for path in lists:
        block = _first(transformer, path)
        returned = _returns(type(block))
        if returned is None:
            raise _cannot(name, f"what {type(block).__name__}.forward returns (several different return statements)")
        unknown = [item for item in returned if item is not None and item not in forward_parameters(type(block))]
        if unknown or (len(returned) > 1 and None in returned):
            raise _cannot(name, f"{type(block).__name__}.forward returns {', '.join(map(str, unknown)) or 'an expression in a tuple'} that is not one of its arguments, so a skipped block cannot pass it through")
        outputs[path] = None if returned == (None,) or returned == (image,) else returned
        if outputs[path] is not None and image not in outputs[path]:
            raise _cannot(name, f"{type(block).__name__}.forward does not return its {image!r}")
    timestep = _located(type(transformer), TIMESTEP_NAMES)
    latents = _located(type(transformer), LATENT_NAMES)
    if timestep is None or latents is None:
        raise _cannot(name, "which argument of its forward is the timestep or the latents")
    first = _first(transformer, lists[0])
    conditioning = next((n for n in CONDITIONING_NAMES if n in forward_parameters(type(first))), image)
    carried = [{n for n in o or () if n != image and TEXT_STREAM not in n} for o in outputs.values()]
    streams = tuple(sorted(set.intersection(*carried)))  # streams every list updates: predicted with the image
    changes = _changes_between_blocks(source, lists, outputs, image)
    other = [line for line, additive in changes if not additive]
    if other:
        raise _cannot(name, f"how its forward changes the image tokens between blocks ({other[0]})")
    if changes and streams:
        raise _cannot(name, f"additions between blocks ({changes[0][0]}) together with the streams {', '.join(streams)}")
    settings = dict(
        name=f"discovered-{name}", transformer_classes=(name,), block_lists=tuple(lists), image_tokens=image,
        block_outputs=outputs, streams=streams, conditioning=conditioning, timestep_argument=timestep,
        hidden_states_argument=latents, residual_per_block=bool(changes),
        __doc__=f"Found by tap.discovery for {name}: blocks {', '.join(lists)}.",
    )
    adapter = type(f"Discovered{name}Adapter", (DiscoveredAdapter, GenericAdapter), settings)
    logger.warning(
        "tap: no adapter names %s; discovered block lists %s (image tokens %r, also predicted %s, blocks return %s%s); "
        "an adapter written for it is safer: see %s", name, ", ".join(f"{p} ({len(_list(transformer, p))})" for p in lists),
        image, ", ".join(streams) or "nothing", {p: o or image for p, o in outputs.items()},
        "; added between blocks, kept exact: " + "; ".join(line for line, _ in changes) if changes else "", DOCS_PAGE,
    )
    return adapter


class DiscoveredAdapter:
    """Checks on the first full step that the last block returned image tokens shaped like the stack's input,
    and probes with the first block's plain norm (a discovered model's modulation is unknown)."""

    def stack_output(self, output):
        return self._checked(super().stack_output(output))

    def _checked(self, image):
        expected = (sum(tokens for tokens, _ in self.sizes), max(width for _, width in self.sizes))  # streams joined
        if not isinstance(image, torch.Tensor) or image.ndim != 3 or tuple(image.shape[1:]) != expected:
            got = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
            raise UnsupportedModelError(
                f"tap.discovery: a block of {self.transformer_classes[0]} returned image tokens {got}, the first "
                f"took [B, {expected[0]}, {expected[1]}]: its blocks join or reshape streams, which needs an adapter "
                f"(see {DOCS_PAGE}); call tap.disable on it"
            )
        return image

    def block_output_image(self, block, output):
        return self._checked(super().block_output_image(block, output))

    def modulated_input(self, block, args, kwargs):
        x = self.block_argument(args, kwargs, self.image_tokens, block)
        norm = next((m for m in block.modules() if _plain_norm(m, x.shape[-1])), None)
        return x if norm is None else norm(x)


def _plain_norm(module: torch.nn.Module, width: int) -> bool:
    """Whether ``module`` is a LayerNorm or RMSNorm over ``width`` features (no modulation input)."""
    if isinstance(module, (torch.nn.LayerNorm, torch.nn.RMSNorm)):
        return tuple(module.normalized_shape) == (width,)
    weight = getattr(module, "weight", None)
    return "RMSNorm" in type(module).__name__ and isinstance(weight, torch.Tensor) and tuple(weight.shape) == (width,)


def _cannot(name: str, what: str) -> UnsupportedModelError:
    return UnsupportedModelError(
        f"tap has no adapter for {name} (`tap list-plugins` lists the classes its adapters cover), and discovery "
        f"could not resolve {what}. Write one in a few lines (tap_plugins.adapters.generic.make_adapter, then "
        f"tap.register_adapter): see {DOCS_PAGE}"
    )


def _forward_source(cls: type) -> str:
    try:
        return inspect.getsource(cls.forward)
    except (OSError, TypeError):
        return ""


def _list(transformer: torch.nn.Module, path: str) -> torch.nn.ModuleList:
    return transformer.get_submodule(path)


def _first(transformer: torch.nn.Module, path: str) -> torch.nn.Module:
    return _list(transformer, path)[0]


def _is_attention(module: torch.nn.Module) -> bool:
    from diffusers.models.attention import AttentionModuleMixin
    from diffusers.models.attention_processor import Attention

    return isinstance(module, (Attention, AttentionModuleMixin)) or type(module).__name__.endswith("Attention")


def _block_lists(transformer: torch.nn.Module, source: str) -> list[str]:
    """The main stack: ModuleLists of attention blocks (not of attention modules) that take image tokens, in the
    order forward uses them, without the lists that feed it (refiners, text or audio encoders, VACE and face
    branches: see ``SIDE_LISTS``), and only those whose blocks call the image tokens what the last list does."""
    found = {}
    for path, module in transformer.named_children():
        if not isinstance(module, torch.nn.ModuleList) or len(module) == 0 or any(word in path for word in SIDE_LISTS):
            continue
        blocks = list(module)
        if any(_is_attention(block) or not any(_is_attention(m) for m in block.modules()) for block in blocks):
            continue
        if len({type(block) for block in blocks}) != 1 or not set(IMAGE_NAMES) & set(forward_parameters(type(blocks[0]))):
            continue
        used = re.search(rf"\bself\.{re.escape(path)}\b", source)
        if used:
            found[path] = used.start()
    ordered = sorted(found, key=found.get)
    if not ordered:
        return []
    image = _image_name(_first(transformer, ordered[-1]))
    return [path for path in ordered if _image_name(_first(transformer, path)) == image]


def _image_name(block: torch.nn.Module) -> str:
    parameters = forward_parameters(type(block))
    return next(name for name in IMAGE_NAMES if name in parameters)


def _block_dicts(transformer: torch.nn.Module, source: str) -> list[str]:
    """ModuleDicts of attention blocks that forward uses: blocks whose order discovery cannot read."""
    return [
        path for path, module in transformer.named_children()
        if isinstance(module, torch.nn.ModuleDict) and any(_is_attention(m) for m in module.modules())
        and re.search(rf"\bself\.{re.escape(path)}\b", source)
    ]


def _changes_between_blocks(source: str, lists: list[str], outputs: dict, image: str) -> list[tuple[str, bool]]:
    """Statements in forward's block loops, other than the block calls, that assign the image tokens'
    variable: (source line, whether it only adds to it). An addition is left out of the forecast by
    summing block residuals; any other change makes the stack's input and output incomparable."""
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return []
    changes = []
    for loop in ast.walk(tree):
        if not isinstance(loop, ast.For) or not any(f"self.{path}" in ast.unparse(loop.iter) for path in lists):
            continue
        path = next(path for path in lists if f"self.{path}" in ast.unparse(loop.iter))
        blocks = _loop_block_names(loop)
        calls = [node for node in ast.walk(loop) if isinstance(node, ast.Assign) and _calls_block(node.value, blocks)]
        variables = {_image_variable(call.targets[0], outputs[path], image) for call in calls} - {None}
        for node in ast.walk(loop):
            if node in calls or not isinstance(node, (ast.Assign, ast.AugAssign)):
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {_root_name(target) for target in targets}
            if names & variables:
                variable = (names & variables).pop()
                changes.append((ast.unparse(node), _adds_to(node, variable, _derived(loop, variable))))
    return changes


def _loop_block_names(loop: ast.For) -> set[str]:
    """The loop variables that may hold a block: all names of the loop target but ``enumerate``'s index."""
    target = loop.target
    if isinstance(loop.iter, ast.Call) and ast.unparse(loop.iter.func) == "enumerate" and isinstance(target, ast.Tuple):
        target = ast.Tuple(elts=target.elts[1:])
    return {node.id for node in ast.walk(target) if isinstance(node, ast.Name)}


def _calls_block(value: ast.expr, blocks: set[str]) -> bool:
    """Whether ``value`` calls one of the loop's blocks, directly or through a checkpointing function given it."""
    return any(
        isinstance(node, ast.Call) and (
            _root_name(node.func) in blocks or any(_root_name(arg) in blocks for arg in node.args)
        )
        for node in ast.walk(value)
    )


def _image_variable(target: ast.expr, outputs: tuple | None, image: str) -> str | None:
    """The variable a block call assigns the image tokens to."""
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Tuple) and outputs is not None and len(target.elts) == len(outputs):
        element = target.elts[outputs.index(image)]
        return element.id if isinstance(element, ast.Name) else None
    return None


def _root_name(target: ast.expr) -> str | None:
    while isinstance(target, (ast.Subscript, ast.Attribute)):
        target = target.value
    return target.id if isinstance(target, ast.Name) else None


def _derived(loop: ast.For, variable: str) -> set[str]:
    """``variable`` and the names the loop assigns from values computed from it."""
    derived, grew = {variable}, True
    while grew:
        grew = False
        for node in ast.walk(loop):
            if isinstance(node, ast.Assign) and any(isinstance(n, ast.Name) and n.id in derived for n in ast.walk(node.value)):
                for target in node.targets:
                    name = _root_name(target)
                    if name is not None and name not in derived:
                        derived.add(name)
                        grew = True
    return derived


def _adds_to(node: ast.Assign | ast.AugAssign, variable: str, derived: set[str]) -> bool:
    """``v += e``, ``v = v + e``, ``v = e + v`` (or on a slice of v) with an ``e`` that does not depend on v
    (``derived``): an addition that a forecast of the blocks can leave out and the loop then adds exactly."""
    if isinstance(node, ast.AugAssign):
        added = node.value if isinstance(node.op, ast.Add) else None
    else:
        value, same = node.value, ast.unparse(node.targets[0])
        added = None
        if isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add):
            added = value.right if ast.unparse(value.left) == same else value.left if ast.unparse(value.right) == same else None
    if added is None:
        return False
    metadata = {id(n.value) for n in ast.walk(added) if isinstance(n, ast.Attribute) and n.attr in ("device", "dtype", "shape")}
    return not any(
        isinstance(n, ast.Name) and n.id in derived and id(n) not in metadata for n in ast.walk(added)
    )


def _returns(block_class: type) -> tuple | None:
    """The names a block's forward returns: (name,) or a tuple of names (None for an expression); None if ambiguous."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(block_class.forward)))
    except (OSError, TypeError, SyntaxError):
        return None
    function = tree.body[0]
    shapes = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Return) and node.value is not None:
            items = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
            shapes.add(tuple(item.id if isinstance(item, ast.Name) else None for item in items))
    if len(shapes) != 1:
        return None
    return shapes.pop()


def _located(cls: type, names: tuple[str, ...]) -> tuple[str, int] | None:
    """(keyword, position) of the first of ``names`` among the forward's parameters."""
    parameters = [p for p in inspect.signature(cls.forward).parameters if p != "self"]
    return next(((name, parameters.index(name)) for name in names if name in parameters), None)
