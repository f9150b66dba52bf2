"""TAPConfig: every knob of a tap run in one frozen, validated object, plus named presets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import attrs
import torch

from tap.errors import ConfigError, TAPError, UnknownNameError
from tap.family import MIN_HORIZON, Candidate

CACHE_DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16, "float16": torch.float16}
# An order-m candidate extrapolates the polynomial through the last m + 1 full steps; above 4 it
# amplifies the features' noise more than it gains (the paper uses 0..2) and caches that many steps.
MAX_ORDER = 4


def _registered(kind: str):
    def check(instance, attribute, value):
        from tap.plugins import registry

        try:
            registry().get(kind, value)
        except UnknownNameError as error:
            raise ConfigError(f"{attribute.name}={value!r}: {error}") from None

    return check


def _as_tuple(value):
    """Lists and ranges become tuples; anything else is left for the validator to refuse."""
    return tuple(value) if isinstance(value, (list, tuple, range)) else value


def _int_tuple(low: int, high: int, why: str):
    def check(instance, attribute, value):
        if not isinstance(value, tuple) or not value or any(not isinstance(v, int) or isinstance(v, bool) for v in value):
            raise ConfigError(f"{attribute.name} must be a non-empty tuple of ints, got {value!r}")
        if any(not low <= v <= high for v in value):
            raise ConfigError(f"{attribute.name}={value!r}: each must be in [{low}, {high}] ({why})")
        if len(set(value)) != len(value):
            raise ConfigError(f"{attribute.name}={value!r} names a value twice: each candidate would be scored twice")

    return check


def _at_least(minimum: int):
    def check(instance, attribute, value):
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ConfigError(f"{attribute.name} must be an int >= {minimum}, got {value!r}")

    return check


def _boolean(instance, attribute, value):
    if not isinstance(value, bool):
        raise ConfigError(f"{attribute.name} must be True or False, got {value!r}")


def _candidates(instance, attribute, value):
    if not isinstance(value, tuple) or any(not isinstance(c, Candidate) for c in value):
        raise ConfigError(f"candidates must be a tuple of tap.Candidate instances, got {value!r}")


def _cache_dtype(instance, attribute, value):
    if not isinstance(value, str) or value not in CACHE_DTYPES:
        raise ConfigError(f"cache_dtype={value!r}; allowed: {sorted(CACHE_DTYPES)}")


def _as_options(value):
    """None becomes {}, a mapping a dict; anything else is left for the validator to refuse."""
    return {} if value is None else dict(value) if isinstance(value, Mapping) else value


def _options(instance, attribute, value):
    if not isinstance(value, dict) or any(not isinstance(key, str) for key in value):
        raise ConfigError(f"{attribute.name} must be a dict of parameter names to values, got {value!r}")


def _has_field(cls: type, name: str) -> bool:
    return attrs.has(cls) and name in {f.name for f in attrs.fields(cls)}


def _blaming(field: str, build):
    """``build()``, naming the TAPConfig ``field`` in the ConfigError of a plugin that refuses its options."""
    try:
        return build()
    except ConfigError as error:
        raise ConfigError(f"{field}: {error}") from None


def _candidate(data) -> Candidate:
    """A Candidate from its preset form ``{predictor, params, horizon}``."""
    from tap.plugins import registry
    from tap.registry import instantiate

    if not isinstance(data, Mapping) or not isinstance(data.get("predictor"), str) or not isinstance(data.get("params", {}), Mapping):
        raise ConfigError(f"a candidate must be {{'predictor': name, 'params': {{...}}, 'horizon': int <= 0}}, got {data!r}")
    name, params = data["predictor"], dict(data.get("params", {}))
    return Candidate(instantiate("predictor", registry().get("predictor", name).cls, name, params), data.get("horizon", 0))


@attrs.frozen
class TAPConfig:
    """How tap accelerates one transformer.

    Full steps, as decided by ``schedule``: the first ``warmup`` steps, then every ``interval``-th,
    then the last ``final_full`` steps (when the step count is known). With ``interval=None`` (the
    default) the interval follows the step count: the widest grid that holds ``full_steps`` full
    steps; runs too short for it, or whose step count tap cannot read, are computed in full. Candidates:
    ``predictor`` at each of ``orders`` and ``horizons`` (or an explicit ``candidates`` tuple,
    third-party predictors included). Each predicted step scores them with ``distance`` between
    the ``probe`` feature and its prediction, and ``selector`` picks per token. With
    ``check_finite`` a predicted step whose prediction is not finite is computed in full instead
    (one host sync per predicted step). With ``trajectory_guard`` a step whose stack input jumps off
    the run's trajectory (latents edited by a callback) restarts the forecast from a full step
    (read with the same sync). With ``per_sample`` a probe-driven schedule decides for each
    sample of a batch as if it were alone (the transformer is called once per sample); without, once
    for the whole batch.
    """

    interval: int | None = attrs.field(default=None, validator=attrs.validators.optional(_at_least(1)))
    full_steps: int = attrs.field(default=9, validator=_at_least(2))
    warmup: int = attrs.field(default=1, validator=_at_least(1))
    final_full: int = attrs.field(default=0, validator=_at_least(0))
    schedule: str = attrs.field(default="fixed", validator=_registered("schedule"))
    schedule_options: Mapping[str, Any] = attrs.field(factory=dict, converter=_as_options, validator=_options)
    predictor: str = attrs.field(default="taylor", validator=_registered("predictor"))
    predictor_options: Mapping[str, Any] = attrs.field(factory=dict, converter=_as_options, validator=_options)
    orders: tuple[int, ...] = attrs.field(
        default=(1,), converter=_as_tuple, validator=_int_tuple(0, MAX_ORDER, "the polynomial order of each candidate; the paper uses 0..2")
    )
    horizons: tuple[int, ...] = attrs.field(
        default=(0,), converter=_as_tuple,
        validator=_int_tuple(MIN_HORIZON, 0, "shifts <= 0 from the current step; the paper's k-4..k is -4..0"),
    )
    candidates: tuple[Candidate, ...] = attrs.field(default=(), converter=_as_tuple, validator=_candidates)
    probe: str = attrs.field(default="modulated-input", validator=_registered("probe"))
    distance: str = attrs.field(default="cosine", validator=_registered("distance"))
    selector: str = attrs.field(default="token", validator=_registered("selector"))
    selector_options: Mapping[str, Any] = attrs.field(factory=dict, converter=_as_options, validator=_options)
    adapter: str | None = attrs.field(default=None, validator=attrs.validators.optional(_registered("adapter")))
    cache_dtype: str = attrs.field(default="float32", validator=_cache_dtype)
    check_finite: bool = attrs.field(default=True, validator=_boolean)
    trajectory_guard: bool = attrs.field(default=True, validator=_boolean)
    per_sample: bool = attrs.field(default=True, validator=_boolean)

    def __attrs_post_init__(self):
        # Refuse bad plugin options now, not mid-generation.
        from tap.plugins import registry
        from tap.registry import instantiate

        self.family()
        schedule = registry().get("schedule", self.schedule).cls
        _blaming("schedule_options", lambda: instantiate(
            "schedule", schedule, self.schedule, dict(self.schedule_options), build=lambda: schedule.from_config(self)
        ))
        selector = registry().get("selector", self.selector).cls
        _blaming("selector_options", lambda: instantiate("selector", selector, self.selector, dict(self.selector_options)))

    def family(self) -> tuple[Candidate, ...]:
        """The candidate family: the explicit ``candidates``, else predictor x orders x horizons."""
        if self.candidates:
            return self.candidates
        from tap.registry import instantiate
        from tap.plugins import registry

        cls = registry().get("predictor", self.predictor).cls
        params = dict(self.predictor_options)
        if not _has_field(cls, "order"):
            predictors = [_blaming("predictor_options", lambda: instantiate("predictor", cls, self.predictor, params))]
        elif "order" in params:
            raise ConfigError(
                f"predictor_options={params!r}: the order of {self.predictor!r} comes from orders={self.orders!r}; "
                f"set orders=({params['order']!r},) instead"
            )
        else:
            predictors = [
                _blaming("predictor_options", lambda: instantiate("predictor", cls, self.predictor, {**params, "order": o}))
                for o in self.orders
            ]
        return tuple(Candidate(p, h) for p in predictors for h in self.horizons)

    @property
    def torch_cache_dtype(self) -> torch.dtype:
        return CACHE_DTYPES[self.cache_dtype]

    def replace(self, **changes) -> TAPConfig:
        """A copy with ``changes`` applied and validated; unknown field names are refused."""
        known = {f.name for f in attrs.fields(TAPConfig)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigError(f"unknown TAPConfig fields {unknown}; fields: {sorted(known)}")
        return attrs.evolve(self, **changes)

    @classmethod
    def preset(cls, name: str, **overrides) -> TAPConfig:
        """A named configuration (see :data:`PRESETS`) or a preset file saved by :meth:`save`
        (``tap tune`` writes them), with ``overrides`` applied."""
        if isinstance(name, str) and name in PRESETS:
            return cls().replace(**{**PRESETS[name], **overrides})
        if isinstance(name, (str, Path)) and str(name).endswith(".json"):
            return cls.load(name).replace(**overrides)
        raise ConfigError(f"unknown preset {name!r}; presets: {sorted(PRESETS)}, or a preset file ending in .json")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able fields; explicit candidates as {predictor, params, horizon}."""
        from tap.plugins import registry

        data = attrs.asdict(self, recurse=False)
        data["candidates"] = [
            {
                "predictor": registry().name_of("predictor", type(c.predictor)),
                "params": attrs.asdict(c.predictor) if attrs.has(type(c.predictor)) else {},
                "horizon": c.horizon,
            }
            for c in self.candidates
        ]
        return {key: list(value) if isinstance(value, tuple) else value for key, value in data.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TAPConfig:
        """The inverse of :meth:`to_dict`; fields left out keep their defaults."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"a preset's config must be an object of TAPConfig fields, got {data!r}")
        data = dict(data)
        candidates = data.get("candidates") or []
        if not isinstance(candidates, list):
            raise ConfigError(f"candidates must be a list of {{'predictor', 'params', 'horizon'}} objects, got {candidates!r}")
        return cls().replace(**{**data, "candidates": tuple(_candidate(c) for c in candidates)})

    def save(self, path) -> None:
        """Write this configuration as a JSON preset file."""
        Path(path).write_text(json.dumps({"tap_preset": PRESET_FORMAT, "config": self.to_dict()}, indent=2) + "\n")

    @classmethod
    def load(cls, path) -> TAPConfig:
        """Read a JSON preset file written by :meth:`save`."""
        try:
            document = json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:
            raise ConfigError(f"cannot read preset file {str(path)!r}: {error}") from None
        if not isinstance(document, dict) or "config" not in document:
            raise ConfigError(f"{str(path)!r} is not a tap preset file (no 'config' entry)")
        if document.get("tap_preset", PRESET_FORMAT) != PRESET_FORMAT:  # hand-written files may leave it out
            raise ConfigError(
                f"preset file {str(path)!r} has tap_preset={document.get('tap_preset')!r}; this tap reads format {PRESET_FORMAT}"
            )
        try:
            return cls.from_dict(document["config"])
        except TAPError as error:
            raise type(error)(f"preset file {str(path)!r}: {error}") from None


PRESET_FORMAT = 1  # the version of the preset file format, written as its "tap_preset" entry

PRESETS: dict[str, dict[str, Any]] = {
    # The paper as published: orders {0,1,2} x horizons k-4..k, cosine on the modulated input, per token.
    "paper": dict(orders=(0, 1, 2), horizons=(-4, -3, -2, -1, 0), distance="cosine", probe="modulated-input", selector="token"),
    # tap's default, chosen by measurement (docs/research.md): the order-1 Taylor forecast of the
    # whole stack's residual; with one candidate there is nothing to select and no probe runs.
    "default": {},
    # Per-token selection between orders 1 and 2: tap's best per-token rule on the demo model.
    "token": dict(orders=(1, 2), distance="cosine", selector="token"),
    # One candidate for the whole sample, chosen per step from the same family.
    "global": dict(orders=(1, 2), selector="global"),
    # FORA-style: reuse the last full step's residual everywhere.
    "fora": dict(predictor="reuse", orders=(0,), selector="fixed"),
    # TaylorSeer-style: the finite-difference order-2 forecast everywhere.
    "taylorseer": dict(predictor="taylorseer", orders=(2,), selector="fixed"),
    # The paper's full steps per model, as budgets: at 50 steps its intervals 8, 4 and 6.
    "flux-dev": dict(full_steps=7),
    "qwen-image": dict(full_steps=13),
    "hunyuan-video": dict(full_steps=9),
}
