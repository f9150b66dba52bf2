"""A generic adapter: support a transformer tap does not know by naming a few of its parts.

Most diffusers DiTs share one shape: lists of blocks called in turn, each taking the image tokens
plus conditioning and returning either the image tokens or a tuple of them and the text stream,
with an AdaLN norm on the image input. :class:`GenericAdapter` implements the adapter interface
from those names (class attributes); :func:`make_adapter` builds a configured subclass in one
call. The built-in SD3, Qwen-Image, Wan and HunyuanVideo adapters are such subclasses.
"""

from __future__ import annotations

from operator import attrgetter
from typing import ClassVar

from tap import Adapter, ConfigError
from tap.adapter import argument


class GenericAdapter(Adapter):
    """An adapter configured by class attributes; subclass it (or call :func:`make_adapter`).

    * ``block_lists``: attribute paths (dots allowed) of the transformer's block lists, in
      execution order, e.g. ``("transformer_blocks", "single_transformer_blocks")``.
    * ``block_arguments``: the leading parameters of the blocks' ``forward``, in order: where an
      argument passed positionally is found. Every name used below must be one of them.
    * ``image_tokens``: the argument holding the image tokens [B, N, D].
    * ``block_outputs``: what a block returns, as argument names (a skipped block passes those
      arguments through), e.g. ``("encoder_hidden_states", "hidden_states")``; ``None`` when a
      block returns the image tokens alone.
    * ``norm``, ``norm_keyword``, ``conditioning``: the probe calls the first block's
      ``norm`` module as ``norm(image_tokens, <norm_keyword>=<conditioning argument>)`` (positional
      when ``norm_keyword`` is None) and keeps the output, or its first element if it is a tuple.

    Override :meth:`modulated_input` when a block has no such norm module.
    """

    block_lists: ClassVar[tuple[str, ...]] = ()
    block_arguments: ClassVar[tuple[str, ...]] = ("hidden_states", "encoder_hidden_states", "temb")
    image_tokens: ClassVar[str] = "hidden_states"
    block_outputs: ClassVar[tuple[str, ...] | None] = None
    norm: ClassVar[str] = "norm1"
    norm_keyword: ClassVar[str | None] = "emb"
    conditioning: ClassVar[str] = "temb"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.name:
            _check(cls)

    def blocks(self, transformer):
        return [block for path in self.block_lists for block in attrgetter(path)(transformer)]

    def block_argument(self, args: tuple, kwargs: dict, name: str):
        """Argument ``name`` of a block call, by keyword or by its place in ``block_arguments``."""
        return argument(args, kwargs, name, self.block_arguments.index(name))

    def stack_input(self, args, kwargs):
        return self.block_argument(args, kwargs, self.image_tokens)

    def stack_output(self, output):
        return output if self.block_outputs is None else output[self.block_outputs.index(self.image_tokens)]

    def skip_output(self, args, kwargs, hidden_states):
        if self.block_outputs is None:
            return hidden_states
        return tuple(
            hidden_states if name == self.image_tokens else self.block_argument(args, kwargs, name)
            for name in self.block_outputs
        )

    def modulated_input(self, block, args, kwargs):
        norm = getattr(block, self.norm)
        x, condition = self.stack_input(args, kwargs), self.block_argument(args, kwargs, self.conditioning)
        output = norm(x, condition) if self.norm_keyword is None else norm(x, **{self.norm_keyword: condition})
        return output[0] if isinstance(output, tuple) else output


def _check(cls: type[GenericAdapter]) -> None:
    """Refuse a configuration that cannot work, when the class is defined rather than mid-generation."""
    problems = []
    if not cls.transformer_classes:
        problems.append("transformer_classes is empty")
    if not cls.block_lists or isinstance(cls.block_lists, str):
        problems.append(f"block_lists must be a non-empty tuple of attribute names, got {cls.block_lists!r}")
    named = [cls.image_tokens, cls.conditioning, *(cls.block_outputs or ())]
    unknown = [name for name in named if name not in cls.block_arguments]
    if unknown:
        problems.append(f"{unknown} are not in block_arguments {cls.block_arguments}")
    if cls.block_outputs is not None and cls.image_tokens not in cls.block_outputs:
        problems.append(f"block_outputs {cls.block_outputs} lacks the image tokens {cls.image_tokens!r}")
    if problems:
        raise ConfigError(f"adapter {cls.name!r}: " + "; ".join(problems))


def make_adapter(
    name: str,
    transformer_classes: tuple[str, ...],
    block_lists: tuple[str, ...],
    *,
    block_arguments: tuple[str, ...] = GenericAdapter.block_arguments,
    image_tokens: str = GenericAdapter.image_tokens,
    block_outputs: tuple[str, ...] | None = None,
    norm: str = GenericAdapter.norm,
    norm_keyword: str | None = GenericAdapter.norm_keyword,
    conditioning: str = GenericAdapter.conditioning,
    timestep_argument: tuple[str, int] = Adapter.timestep_argument,
    hidden_states_argument: tuple[str, int] = Adapter.hidden_states_argument,
) -> type[GenericAdapter]:
    """A :class:`GenericAdapter` subclass with these settings, ready for ``tap.register_adapter``.

    ``timestep_argument`` and ``hidden_states_argument`` are (keyword, position) of the step's
    timestep and latents in the transformer's own ``forward``.
    """
    settings = dict(
        name=name, transformer_classes=_names(transformer_classes), block_lists=_names(block_lists),
        block_arguments=_names(block_arguments), image_tokens=image_tokens,
        block_outputs=None if block_outputs is None else _names(block_outputs), norm=norm,
        norm_keyword=norm_keyword, conditioning=conditioning, timestep_argument=tuple(timestep_argument),
        hidden_states_argument=tuple(hidden_states_argument),
    )
    class_name = "".join(part.capitalize() for part in name.replace("_", "-").split("-") if part) + "Adapter"
    return type(class_name, (GenericAdapter,), {**settings, "__doc__": f"Generic adapter {name!r}."})


def _names(value: str | tuple[str, ...]) -> tuple[str, ...]:
    """A tuple of names; a single name given as a string is one name, not its letters."""
    return (value,) if isinstance(value, str) else tuple(value)
