"""Discovery: an adapter for a transformer class no adapter names, found by inspecting the model.

tap looks for the shape most diffusers DiTs share (see :mod:`tap_plugins.adapters.generic`):
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

logger = logging.getLogger("tap")

IMAGE_NAMES = ("hidden_states", "x", "visual_embed", "vis")  # what a block calls the image tokens
TEXT_STREAM = "encoder"  # a returned stream named so is the text, which heads do not read; others are predicted
SIDE_LISTS = ("refiner", "text", "txt", "context", "caption", "audio", "vace", "face")  # lists that feed the stack, not part of it
TIMESTEP_NAMES = ("timestep", "timesteps", "t")
LATENT_NAMES = ("hidden_states", "x", "latents", "sample")
CONDITIONING_NAMES = ("temb", "emb", "adaln_input", "timestep", "time_embed")


def discover(transformer: torch.nn.Module):
    """A :class:`~tap_plugins.adapters.generic.GenericAdapter` subclass for ``transformer``, or an error naming what is missing."""
    from tap_plugins.adapters.generic import GenericAdapter, forward_parameters

    name = type(transformer).__name__
    source = _forward_source(type(transformer))
    lists = _block_lists(transformer, source)
    if not lists:
        raise _cannot(name, "no ModuleList of attention blocks called by its forward")
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
    settings = dict(
        name=f"discovered-{name}", transformer_classes=(name,), block_lists=tuple(lists), image_tokens=image,
        block_outputs=outputs, streams=streams, conditioning=conditioning, timestep_argument=timestep,
        hidden_states_argument=latents, __doc__=f"Found by tap.discovery for {name}: blocks {', '.join(lists)}.",
    )
    adapter = type(f"Discovered{name}Adapter", (DiscoveredAdapter, GenericAdapter), settings)
    logger.warning(
        "tap: no adapter names %s; discovered block lists %s (image tokens %r, also predicted %s, blocks return %s); "
        "an adapter written for it is safer: see %s", name, ", ".join(f"{p} ({len(_list(transformer, p))})" for p in lists),
        image, ", ".join(streams) or "nothing", {p: o or image for p, o in outputs.items()}, DOCS_PAGE,
    )
    return adapter


class DiscoveredAdapter:
    """Checks on the first full step that the last block returned image tokens shaped like the stack's input,
    and probes with the first block's plain norm (a discovered model's modulation is unknown)."""

    def stack_output(self, output):
        image = super().stack_output(output)
        expected = self.sizes[0]
        if not isinstance(image, torch.Tensor) or image.ndim != 3 or tuple(image.shape[1:]) != expected:
            got = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
            raise UnsupportedModelError(
                f"tap.discovery: the last block of {self.transformer_classes[0]} returned image tokens {got}, the first "
                f"took [B, {expected[0]}, {expected[1]}]: its blocks join or reshape streams, which needs an adapter "
                f"(see {DOCS_PAGE}); call tap.disable on it"
            )
        return image

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
        f"tap has no adapter for {name}, and discovery could not resolve {what}. Write one in a few lines "
        f"(tap_plugins.adapters.generic.make_adapter, then tap.register_adapter): see {DOCS_PAGE}"
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
    from tap_plugins.adapters.generic import forward_parameters

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
    from tap_plugins.adapters.generic import forward_parameters

    parameters = forward_parameters(type(block))
    return next(name for name in IMAGE_NAMES if name in parameters)


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
