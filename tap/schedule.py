"""The schedule interface: which sampling steps run the full block stack."""

from __future__ import annotations

import abc
from typing import ClassVar, Protocol

import attrs


class ProbeSignals(Protocol):
    """What a probed step can tell a schedule; computed on first use (the step is probed then)."""

    def probe_error(self) -> float: ...

    def probe_change(self) -> float: ...


@attrs.frozen
class StepView:
    """What a schedule may look at when deciding a step.

    ``step``: the sampler's index of this step (0-based; the call count when no index is known);
    ``num_steps``: the sampler's step count when tap can read it from the pipeline's scheduler,
    else None; ``last_full``: index of the last full step (None before the first); ``cached``: how
    many full steps are cached; ``probe``: set for schedules with ``uses_probe`` (see
    :meth:`measured_error`, :meth:`measured_change`); ``first_step``: the index of the
    generation's first step, above 0 when ``strength < 1`` starts the run part-way (so
    ``step - first_step`` counts the steps this generation has run).
    """

    step: int
    num_steps: int | None
    last_full: int | None
    cached: int
    probe: ProbeSignals | None = None
    first_step: int = 0

    def _signals(self) -> ProbeSignals:
        if self.probe is None:
            raise RuntimeError("this step has no probe signals: the schedule must set uses_probe = True")
        return self.probe

    def measured_error(self) -> float:
        """Mean over tokens of ||h_hat - h|| / ||h||: how well the chosen candidates predict this step's probe."""
        return self._signals().probe_error()

    def measured_change(self) -> float:
        """Mean over tokens of ||h - h_last|| / ||h_last||: how far the probe moved since the last full step."""
        return self._signals().probe_change()

    @property
    def since_full(self) -> int | None:
        return None if self.last_full is None else self.step - self.last_full


class Schedule(abc.ABC):
    """Decides per step whether to run in full; a plugin, because placement moves quality most."""

    name: ClassVar[str] = ""
    uses_probe: ClassVar[bool] = False

    @classmethod
    def from_config(cls, config) -> Schedule:
        """Build the schedule from a :class:`tap.TAPConfig` (its interval, warm-up and options)."""
        return cls(**dict(config.schedule_options))

    @abc.abstractmethod
    def is_full(self, view: StepView) -> bool:
        """True when this step must run the whole block stack."""

    def left_alone(self, run_steps: int | None) -> str | None:
        """Why every step of a run of ``run_steps`` steps (None: unknown) is computed in full, or None.

        A run left alone keeps nothing for the forecast, and tap says the reason once.
        """
        return None

    def describe(self, run_steps: int | None) -> str:
        """The rule that places the full steps of a run of ``run_steps`` steps, in a few words, for reports."""
        return f"the {self.name!r} schedule"

    def planned_full_steps(self, num_steps: int) -> list[int] | None:
        """The steps this schedule runs in full over ``num_steps``, or None if it decides from the probe.

        The runtime always runs the first step in full (nothing is cached yet), so it is included.
        """
        if self.uses_probe:
            return None
        full: list[int] = []
        for step in range(num_steps):
            view = StepView(step, num_steps, full[-1] if full else None, len(full))
            if not full or self.is_full(view):
                full.append(step)
        return full
