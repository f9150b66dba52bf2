"""The generic adapter: support a transformer by naming a few of its parts (core: discovery builds one too).

Most diffusers DiTs share one shape: lists of blocks called in turn, each taking the image tokens
plus conditioning and returning either the image tokens or a tuple of them and the text stream,
with an AdaLN norm on the image input. :class:`GenericAdapter` implements the adapter interface
from those names (class attributes); :func:`make_adapter` builds a configured subclass in one
call. Most built-in adapters are such subclasses.

Streams: the residual predicted on a skipped step covers the image tokens and every stream named
in ``streams`` (a second token stream the blocks update and the head reads after the stack, such
as an audio stream). They are joined on the token axis, narrower ones zero-padded to the widest,
so the runtime predicts them as one tensor; tokens outside the probe's image tokens use the
family's first candidate.
"""

from __future__ import annotations

import functools
import inspect
from operator import attrgetter
from typing import Any, ClassVar

import torch

from tap.adapter import Adapter, argument
from tap.errors import ConfigError


@functools.lru_cache(maxsize=None)
def forward_parameters(block_class: type) -> tuple[str, ...]:
    """The parameter names of a block class's ``forward``, in order (``self`` and ``*args`` left out)."""
    parameters = inspect.signature(block_class.forward).parameters.values()
    plain = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return tuple(p.name for p in parameters if p.kind in plain and p.name != "self")


class GenericAdapter(Adapter):
    """An adapter configured by class attributes; subclass it (or call :func:`make_adapter`).

    * ``block_lists``: attribute paths (dots allowed) of the transformer's block lists, in
      execution order, e.g. ``("transformer_blocks", "single_transformer_blocks")``.
    * ``block_arguments``: the leading parameters of every block's ``forward``, in order: where an
      argument passed positionally is found. ``None`` (the default) reads each block's own
      signature, so lists whose blocks take different arguments need no setting.
    * ``image_tokens``: the argument holding the image tokens [B, N, D].
    * ``block_outputs``: what a block returns, as argument names (a skipped block passes those
      arguments through), e.g. ``("encoder_hidden_states", "hidden_states")``; ``None`` when a
      block returns the image tokens alone. A dict gives it per list path.
    * ``streams``: other arguments (and outputs) whose residual is predicted with the image tokens:
      streams the blocks update and something after the stack reads.
    * ``image_position``: ``"end"`` or ``"start"`` when the last list's blocks carry the image tokens
      joined after (or before) other tokens, e.g. ``[text; image]`` in single-stream blocks; only
      the image part is predicted, and it is found by the stack input's token count.
    * ``exact_only``: keyword arguments of the transformer's ``forward`` that, when given (not
      None), feed something into the block loop that a predicted step would get wrong (ControlNet
      residuals added between blocks, say): such calls run every block, and tap says so once.
    * ``residual_per_block``: cache the sum of each block's own residual, so that what the
      transformer adds to the image tokens between blocks stays exact (see ``Adapter.block_image``).
      ``adds_between_blocks`` names the transformer's ``forward`` inputs (ControlNet residuals, say)
      that, when given, make it add between blocks: calls with them sum block residuals.
    * ``norm``, ``norm_keyword``, ``conditioning``: the probe calls the first block's
      ``norm`` module as ``norm(image_tokens, <norm_keyword>=<conditioning argument>)`` (positional
      when ``norm_keyword`` is None; ``norm(image_tokens)`` when ``conditioning`` is None) and keeps
      the output, or its first element if it is a tuple.

    Override :meth:`modulated_input` when a block has no such norm module.
    """

    block_lists: ClassVar[tuple[str, ...]] = ()
    block_arguments: ClassVar[tuple[str, ...] | None] = None
    image_tokens: ClassVar[str] = "hidden_states"
    block_outputs: ClassVar[tuple[str, ...] | None | dict[str, tuple[str, ...] | None]] = None
    streams: ClassVar[tuple[str, ...]] = ()
    image_position: ClassVar[str | None] = None
    exact_only: ClassVar[tuple[str, ...]] = ()
    norm: ClassVar[str] = "norm1"
    norm_keyword: ClassVar[str | None] = "emb"
    conditioning: ClassVar[str | None] = "temb"

    def __init__(self) -> None:
        self.list_of: dict[int, str] = {}  # id(block) -> its list path
        self.first_block: torch.nn.Module | None = None
        self.last_block: torch.nn.Module | None = None
        self.sizes: tuple[tuple[int, int], ...] = ()  # (tokens, width) of each joined stream, image first

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.name:
            _check(cls)

    def blocks(self, transformer):
        found = []
        for path in self.block_lists:
            for block in attrgetter(path)(transformer):
                self.list_of[id(block)] = path
                found.append(block)
        self.first_block, self.last_block = (found[0], found[-1]) if found else (None, None)
        for block in {type(block): block for block in found}.values():
            self._check_names(block)
        return found

    def _check_names(self, block: torch.nn.Module) -> None:
        """Every name this adapter reads from ``block``'s calls is a parameter of its ``forward``."""
        arguments = self.arguments_of(block)
        named = [self.image_tokens, *(self.outputs_of(block) or ())]
        if block is self.first_block:
            named += [*self.streams, *([self.conditioning] if self.conditioning else [])]
        unknown = [name for name in dict.fromkeys(named) if name not in arguments]
        if unknown:
            raise ConfigError(
                f"adapter {self.name!r}: {type(block).__name__}.forward has no parameter {', '.join(map(repr, unknown))} "
                f"(its parameters: {', '.join(arguments)})"
            )

    # -- where things are in a block call and its output -------------------------------------------
    def arguments_of(self, block: torch.nn.Module | None) -> tuple[str, ...]:
        if self.block_arguments is not None or block is None:
            return self.block_arguments or ()
        return forward_parameters(type(block))

    def outputs_of(self, block: torch.nn.Module | None) -> tuple[str, ...] | None:
        if not isinstance(self.block_outputs, dict):
            return self.block_outputs
        path = self.list_of.get(id(block), self.block_lists[0])
        return self.block_outputs.get(path)

    def block_argument(self, args: tuple, kwargs: dict, name: str, block: torch.nn.Module | None = None):
        """Argument ``name`` of a call of ``block`` (default: the first block), by keyword or position."""
        parameters = self.arguments_of(block if block is not None else self.first_block)
        return argument(args, kwargs, name, parameters.index(name) if name in parameters else len(args))

    def output_named(self, output: Any, name: str, block: torch.nn.Module | None) -> torch.Tensor:
        outputs = self.outputs_of(block)
        return output if outputs is None else output[outputs.index(name)]

    # -- the adapter interface ---------------------------------------------------------------------
    def stack_input(self, args, kwargs):
        image = self.block_argument(args, kwargs, self.image_tokens)
        if not self.streams:
            self.sizes = ((image.shape[1], image.shape[-1]),)
            return image
        return self.join([image, *(self.block_argument(args, kwargs, name) for name in self.streams)])

    def stack_output(self, output):
        last = self.last_block
        image = self.output_named(output, self.image_tokens, last)
        if self.image_position is not None:
            return self.image_part(image)
        if not self.streams:
            return image
        return self.join([image, *(self.output_named(output, name, last) for name in self.streams)], record=False)

    def probe_output(self, output):
        image = self.output_named(output, self.image_tokens, self.first_block)
        if not self.streams:
            return image
        return self.join([image, *(self.output_named(output, n, self.first_block) for n in self.streams)], record=False)

    def skip_output(self, args, kwargs, hidden_states):
        values = dict(zip((self.image_tokens, *self.streams), self.split(hidden_states)))
        outputs = self.outputs_of(self.first_block)
        if outputs is None:
            return values[self.image_tokens]
        return tuple(values[name] if name in values else self.block_argument(args, kwargs, name) for name in outputs)

    def full_compute_reason(self, args, kwargs):
        given = [name for name in self.exact_only if kwargs.get(name) is not None]
        return f"{type(self).__name__} cannot predict a step given {', '.join(given)}" if given else None

    def skip_block(self, block, args, kwargs):
        outputs = self.outputs_of(block)
        if outputs is None:
            return self.block_argument(args, kwargs, self.image_tokens, block)
        return tuple(self.block_argument(args, kwargs, name, block) for name in outputs)

    def block_image(self, block, args, kwargs):
        return self.image_part(self.block_argument(args, kwargs, self.image_tokens, block))

    def block_output_image(self, block, output):
        return self.image_part(self.output_named(output, self.image_tokens, block))

    def image_part(self, tokens: torch.Tensor) -> torch.Tensor:
        """The image tokens of a block's image argument or output, cut out of a joined sequence (``image_position``)."""
        count = self.sizes[0][0]
        if self.image_position is None or tokens.shape[1] == count:
            return tokens
        return tokens[:, -count:] if self.image_position == "end" else tokens[:, :count]

    def modulated_input(self, block, args, kwargs):
        norm = getattr(block, self.norm)
        x = self.block_argument(args, kwargs, self.image_tokens, block)
        if self.conditioning is None:
            output = norm(x)
        else:
            condition = self.block_argument(args, kwargs, self.conditioning, block)
            output = norm(x, condition) if self.norm_keyword is None else norm(x, **{self.norm_keyword: condition})
        return output[0] if isinstance(output, tuple) else output

    # -- joining streams ---------------------------------------------------------------------------
    def join(self, streams: list[torch.Tensor], record: bool = True) -> torch.Tensor:
        """Streams [B, N_k, D_k] as one [B, sum N_k, max D_k] tensor (narrower ones zero-padded)."""
        width = max(stream.shape[-1] for stream in streams)
        if record:
            self.sizes = tuple((stream.shape[1], stream.shape[-1]) for stream in streams)
        padded = [torch.nn.functional.pad(s, (0, width - s.shape[-1])) if s.shape[-1] < width else s for s in streams]
        return torch.cat(padded, dim=1)

    def split(self, joined: torch.Tensor) -> list[torch.Tensor]:
        """The streams :meth:`join` joined, in their own widths."""
        if len(self.sizes) <= 1:
            return [joined]
        parts = joined.split([tokens for tokens, _ in self.sizes], dim=1)
        return [part[..., :width] for part, (_, width) in zip(parts, self.sizes)]


def _check(cls: type[GenericAdapter]) -> None:
    """Refuse a configuration that cannot work, when the class is defined rather than mid-generation."""
    problems = []
    if not cls.transformer_classes:
        problems.append("transformer_classes is empty")
    if not cls.block_lists or isinstance(cls.block_lists, str):
        problems.append(f"block_lists must be a non-empty tuple of attribute names, got {cls.block_lists!r}")
    outputs = cls.block_outputs.values() if isinstance(cls.block_outputs, dict) else [cls.block_outputs]
    if cls.block_arguments is not None:
        named = [cls.image_tokens, *([cls.conditioning] if cls.conditioning else []), *cls.streams, *(n for o in outputs for n in (o or ()))]
        unknown = [name for name in named if name not in cls.block_arguments]
        if unknown:
            problems.append(f"{unknown} are not in block_arguments {cls.block_arguments}")
    for listed in outputs:
        if listed is not None and cls.image_tokens not in listed:
            problems.append(f"block_outputs {listed} lacks the image tokens {cls.image_tokens!r}")
    if cls.image_position not in (None, "end", "start"):
        problems.append(f"image_position must be None, 'end' or 'start', got {cls.image_position!r}")
    if cls.image_position is not None and cls.streams:
        problems.append("image_position and streams cannot be combined")
    if (cls.residual_per_block or cls.adds_between_blocks) and cls.streams:
        problems.append("summing block residuals (residual_per_block, adds_between_blocks) covers the image tokens alone, not streams")
    if problems:
        raise ConfigError(f"adapter {cls.name!r}: " + "; ".join(problems))


def make_adapter(
    name: str,
    transformer_classes: tuple[str, ...],
    block_lists: tuple[str, ...],
    *,
    block_arguments: tuple[str, ...] | None = None,
    image_tokens: str = GenericAdapter.image_tokens,
    block_outputs: tuple[str, ...] | None | dict = None,
    streams: tuple[str, ...] = (),
    image_position: str | None = None,
    norm: str = GenericAdapter.norm,
    norm_keyword: str | None = GenericAdapter.norm_keyword,
    conditioning: str | None = GenericAdapter.conditioning,
    timestep_argument: tuple[str, int] = Adapter.timestep_argument,
    hidden_states_argument: tuple[str, int] = Adapter.hidden_states_argument,
) -> type[GenericAdapter]:
    """A :class:`GenericAdapter` subclass with these settings, ready for ``tap.register_adapter``.

    ``timestep_argument`` and ``hidden_states_argument`` are (keyword, position) of the step's
    timestep and latents in the transformer's own ``forward``.
    """
    if isinstance(block_outputs, dict):
        block_outputs = {path: None if listed is None else _names(listed) for path, listed in block_outputs.items()}
    elif block_outputs is not None:
        block_outputs = _names(block_outputs)
    settings = dict(
        name=name, transformer_classes=_names(transformer_classes), block_lists=_names(block_lists),
        block_arguments=None if block_arguments is None else _names(block_arguments), image_tokens=image_tokens,
        block_outputs=block_outputs, streams=_names(streams), image_position=image_position, norm=norm,
        norm_keyword=norm_keyword, conditioning=conditioning, timestep_argument=tuple(timestep_argument),
        hidden_states_argument=tuple(hidden_states_argument),
    )
    class_name = "".join(part.capitalize() for part in name.replace("_", "-").split("-") if part) + "Adapter"
    return type(class_name, (GenericAdapter,), {**settings, "__doc__": f"Generic adapter {name!r}."})


def _names(value: str | tuple[str, ...]) -> tuple[str, ...]:
    """A tuple of names; a single name given as a string is one name, not its letters."""
    return (value,) if isinstance(value, str) else tuple(value)
