"""The schedule interface: which sampling steps run the full block stack."""

from __future__ import annotations

import abc
from typing import Callable, ClassVar

import attrs


@attrs.frozen
class StepView:
    """What a schedule may look at when deciding a step.

    ``step``: index of this call in the generation (0-based); ``num_steps``: the sampler's step
    count when tap can read it from the pipeline's scheduler, else None; ``last_full``: index of
    the last full step (None before the first); ``cached``: how many full steps are cached;
    ``probe_error``: set for schedules with ``uses_probe`` (see :meth:`measured_error`).
    """

    step: int
    num_steps: int | None
    last_full: int | None
    cached: int
    probe_error: Callable[[], float] | None = None

    def measured_error(self) -> float:
        """Mean relative error of the probe's prediction at this step (probes the step on first call).

        Only schedules that set ``uses_probe`` may call it; the runtime then keeps probe features.
        """
        if self.probe_error is None:
            raise RuntimeError("this step has no probe error: the schedule must set uses_probe = True")
        return self.probe_error()

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
