"""Checks that plugin authors run on their own classes (tap runs them on every registered one).

Each check raises AssertionError, and only AssertionError, with a counterexample. Example::

    from tap.testing import check_predictor
    check_predictor(MyPredictor(order=2))

The predictor checks draw their cases with hypothesis, which comes with the test extra
(``pip install 'tap-diffusion[test]'``); importing this module does not need it, and without it
those checks raise :class:`MissingTestExtraError` instead.
"""

from __future__ import annotations

import contextlib

import torch

from tap.adapter import Adapter
from tap.distance import Distance, GramStats
from tap.errors import InsufficientHistoryError, TAPError
from tap.predictor import Predictor
from tap.probe import BlockCall, Probe, ProbeResult
from tap.schedule import Schedule, StepView
from tap.selector import Selector

MAX_STEP = 60
MAX_TARGET_OFFSET = 8
# Relative tolerance of the polynomial check. In float64 (eps ~1.1e-16) an interpolating
# extrapolation of degree <= 4 through distinct integer steps in [0, 60], evaluated up to 8 steps
# past the last one, amplifies rounding by its Lebesgue constant (sum of |weights|), which stays
# below 1e6 there, so honest errors are < 1e-9 of the values' scale; a wrong formula misses by
# O(1) of that scale. 1e-7 sits between the two with margins of 100x on both sides.
RELATIVE_TOLERANCE = 1e-7


class MissingTestExtraError(TAPError, ImportError):
    """A check that draws random cases ran without hypothesis, which the test extra installs."""


def _hypothesis():
    """The hypothesis module, imported when a check first needs it."""
    try:
        import hypothesis
        import hypothesis.strategies
    except ImportError as error:
        raise MissingTestExtraError(
            "tap.testing's predictor checks need hypothesis, which a plain install lacks: "
            "pip install 'tap-diffusion[test]'"
        ) from error
    return hypothesis


@contextlib.contextmanager
def failing_as_assertion(subject, case: str):
    """Turn any exception but AssertionError into one naming ``subject`` and the ``case`` it failed on."""
    try:
        yield
    except AssertionError:
        raise
    except Exception as error:
        raise AssertionError(f"{subject} raised {type(error).__name__}: {error} ({case})") from error


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_declarations(predictor: Predictor) -> None:
    """Assert that ``history`` is an int in [1, 61] and ``exact_degree`` an int >= 0."""
    with failing_as_assertion(predictor, "reading history and exact_degree"):
        history, degree = predictor.history, predictor.exact_degree
    assert _is_int(history) and 1 <= history <= MAX_STEP + 1, f"{predictor}: history must be an int in [1, {MAX_STEP + 1}], got {history!r}"
    assert _is_int(degree) and degree >= 0, f"{predictor}: exact_degree must be an int >= 0, got {degree!r}"


def polynomial_cases(predictor: Predictor):
    """A hypothesis strategy drawing (steps, values, target, expected) for a random polynomial of
    degree <= ``predictor.exact_degree``."""
    return _hypothesis().strategies.composite(_draw_polynomial_case)(predictor)


def _draw_polynomial_case(draw, predictor: Predictor):
    st = _hypothesis().strategies
    count = min(predictor.history + draw(st.integers(0, 3)), MAX_STEP + 1)
    steps = sorted(draw(st.lists(st.integers(0, MAX_STEP), min_size=count, max_size=count, unique=True)))
    target = steps[-1] + draw(st.integers(1, MAX_TARGET_OFFSET))
    degree = draw(st.integers(0, predictor.exact_degree))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=3)))
    seed = draw(st.integers(0, 2**31 - 1))
    generator = torch.Generator().manual_seed(seed)
    coefficients = torch.rand((degree + 1, *shape), generator=generator, dtype=torch.float64) * 4 - 2
    # Scale coefficient i by 1/MAX_STEP^i so every term has a comparable magnitude over [0, 68].
    scales = torch.tensor([float(MAX_STEP) ** -i for i in range(degree + 1)], dtype=torch.float64)
    coefficients = coefficients * scales.view(-1, *([1] * len(shape)))

    def evaluate(t: float) -> torch.Tensor:
        return sum(coefficients[i] * t**i for i in range(degree + 1))

    values = torch.stack([evaluate(float(s)) for s in steps])
    return torch.tensor(steps, dtype=torch.float64), values, float(target), evaluate(float(target))


def _examples(max_examples: int | None) -> int:
    """``max_examples``, or the loaded hypothesis profile's when None."""
    return _hypothesis().settings.default.max_examples if max_examples is None else max_examples


def _check_cases(predictor: Predictor, cases, max_examples: int | None, misses: str) -> None:
    """Assert that ``predictor`` predicts every drawn (steps, values, target, expected) case within tolerance."""
    hypothesis = _hypothesis()

    @hypothesis.settings(
        max_examples=_examples(max_examples), deadline=None, database=None, report_multiple_bugs=False,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(cases)
    def check(case):
        steps, values, target, expected = case
        with failing_as_assertion(predictor, f"steps={steps.tolist()}, target={target}"):
            predicted = predictor.predict(steps, values, target)
            assert isinstance(predicted, torch.Tensor), f"{predictor}: predict returned {type(predicted).__name__}, not a tensor"
            assert predicted.shape == expected.shape, f"{predictor}: shape {tuple(predicted.shape)} != {tuple(expected.shape)}"
            scale = 1.0 + float(values.abs().max()) + float(expected.abs().max())
            error = float((predicted - expected).abs().max())
        assert error <= RELATIVE_TOLERANCE * scale, (
            f"{predictor} misses {misses}: steps={steps.tolist()}, target={target}, error={error:.3g} > {RELATIVE_TOLERANCE * scale:.3g}"
        )

    with failing_as_assertion(predictor, f"the check on {misses}"):
        check()


def check_polynomial_exactness(predictor: Predictor, max_examples: int | None = None) -> None:
    """Assert that ``predictor`` reproduces every polynomial of degree <= its ``exact_degree``.

    Random coefficients, random distinct non-uniform integer step positions in [0, 60], targets
    1..8 steps past the last cached one, random trailing shapes, float64. ``max_examples``: cases
    drawn (None: the loaded hypothesis profile's count).
    """
    check_declarations(predictor)
    _check_cases(predictor, polynomial_cases(predictor), max_examples, f"a polynomial of degree <= {predictor.exact_degree} (its exact_degree)")


# Per-step rates of the exponential check, times the spacing: multipliers exp(rate) from 0.55 to 1.35,
# apart by at least 0.07, so a few of them are told apart well above rounding on a short window.
EXPONENTIAL_RATES = (-0.6, -0.45, -0.3, -0.15, 0.0, 0.15, 0.3)


def exponential_cases(predictor: Predictor, terms: int):
    """A hypothesis strategy drawing (steps, values, target, expected) for a random sum of ``terms``
    exponentials sum_k a_k exp(lambda_k (t - steps[0])) on evenly spaced steps."""
    return _hypothesis().strategies.composite(_draw_exponential_case)(predictor, terms)


def _draw_exponential_case(draw, predictor: Predictor, terms: int):
    st = _hypothesis().strategies
    count = min(predictor.history + draw(st.integers(0, 2)), MAX_STEP + 1)
    spacing = draw(st.integers(1, max(1, min(4, MAX_STEP // max(1, count - 1)))))
    start = draw(st.integers(0, MAX_STEP - spacing * (count - 1)))
    steps = [start + spacing * j for j in range(count)]
    target = steps[-1] + draw(st.integers(1, MAX_TARGET_OFFSET))
    picked = draw(st.lists(st.sampled_from(EXPONENTIAL_RATES), min_size=terms, max_size=terms, unique=True))
    rates = [rate / spacing for rate in picked]  # per step, so each spacing multiplies mode k by exp(picked[k])
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=3)))
    seed = draw(st.integers(0, 2**31 - 1))
    generator = torch.Generator().manual_seed(seed)
    amplitudes = torch.rand((terms, *shape), generator=generator, dtype=torch.float64) * 4 - 2

    def evaluate(t: float) -> torch.Tensor:
        return sum(amplitudes[k] * float(torch.tensor(rates[k] * (t - steps[0]), dtype=torch.float64).exp()) for k in range(terms))

    values = torch.stack([evaluate(float(s)) for s in steps])
    return torch.tensor(steps, dtype=torch.float64), values, float(target), evaluate(float(target))


def check_exponential_exactness(predictor: Predictor, terms: int, max_examples: int | None = None) -> None:
    """Assert that ``predictor`` reproduces every sum of ``terms`` exponentials with distinct real rates.

    Evenly spaced integer steps (spacing 1-4) in [0, 60], rates per spacing drawn from
    :data:`EXPONENTIAL_RATES`, random amplitudes in [-2, 2] and trailing shapes, targets 1..8 steps
    past the last cached one (so a fractional number of spacings), float64, the relative
    tolerance of the polynomial check. Only evenly spaced steps: the rates of exponentials enter
    non-linearly, and unevenly spaced samples of them have no closed-form fit.
    """
    check_declarations(predictor)
    assert _is_int(terms) and terms >= 1, f"terms must be an int >= 1, got {terms!r}"
    _check_cases(predictor, exponential_cases(predictor, terms), max_examples, f"a sum of {terms} exponentials")


def check_insufficient_history(predictor: Predictor) -> None:
    """Assert that predicting from fewer entries than ``history`` raises InsufficientHistoryError."""
    check_declarations(predictor)
    count = predictor.history - 1
    steps = torch.arange(count, dtype=torch.float64)
    with failing_as_assertion(predictor, f"predicting from {count} entries"):
        try:
            predictor.predict(steps, torch.zeros(count, 2), float(count + 1))
        except InsufficientHistoryError:
            return
    raise AssertionError(f"{predictor} accepted {count} entries although it needs {predictor.history}")


def check_degrade(predictor: Predictor, max_examples: int | None = None) -> None:
    """Assert that ``degrade(available)``, for each ``available`` below ``history``, returns None or a
    predictor that needs at most ``available`` entries and reproduces polynomials up to its own degree."""
    check_declarations(predictor)
    for available in range(1, predictor.history):
        with failing_as_assertion(predictor, f"degrade({available})"):
            degraded = predictor.degrade(available)
        if degraded is None:
            continue
        assert isinstance(degraded, Predictor), f"{predictor}.degrade({available}) returned {degraded!r}, not a tap.Predictor"
        try:
            check_declarations(degraded)
            assert degraded.history <= available, f"it needs {degraded.history} cached steps"
            check_polynomial_exactness(degraded, max_examples)
        except AssertionError as error:
            raise AssertionError(f"{predictor}.degrade({available}) returned {degraded}: {error}") from error


def check_predictor(predictor: Predictor, max_examples: int | None = None) -> None:
    """Every check a predictor must pass: polynomial exactness, the history error and ``degrade``
    (``max_examples`` polynomials, a tenth of them per degraded variant; None: the hypothesis profile's count)."""
    assert isinstance(predictor, Predictor), f"{predictor!r} is not a tap.Predictor"
    examples = _examples(max_examples)
    check_polynomial_exactness(predictor, examples)
    check_insufficient_history(predictor)
    check_degrade(predictor, max(1, examples // 10))


def check_probe(probe: Probe, adapter: Adapter, call: BlockCall) -> None:
    """Assert that ``probe(adapter, call)`` returns a finite floating h [B, N, D] over the call's image
    tokens, the same on a second call, with the first block's output exactly when ``runs_first_block``."""
    assert isinstance(probe, Probe), f"{probe!r} is not a tap.Probe"
    with failing_as_assertion(probe, "probing the call twice"):
        result, again = probe(adapter, call), probe(adapter, call)
        tokens = tuple(adapter.stack_input(call.args, call.kwargs).shape[:2])
    assert isinstance(result, ProbeResult), f"{probe.name}: returned {type(result).__name__}, not a tap.ProbeResult"
    h = result.h
    assert isinstance(h, torch.Tensor) and h.is_floating_point() and h.ndim == 3, f"{probe.name}: h must be a float tensor [B, N, D], got {h!r}"
    assert tuple(h.shape[:2]) == tokens, f"{probe.name}: h has shape {tuple(h.shape)}, the image tokens are {tokens}"
    assert bool(torch.isfinite(h).all()), f"{probe.name}: h is not finite"
    assert torch.equal(h, again.h), f"{probe.name}: a second call gave another h"
    if probe.runs_first_block:
        assert result.block_output is not None, f"{probe.name}: runs_first_block is set but no block_output was returned"
        with failing_as_assertion(probe, "comparing block_output with the block's own output"):
            same = torch.allclose(adapter.stack_output(result.block_output), adapter.stack_output(call()))
        assert same, f"{probe.name}: block_output differs from the first block's output"
    else:
        assert result.block_output is None, f"{probe.name}: returned a block_output without runs_first_block = True"


def check_distance(distance: Distance, seed: int = 0) -> None:
    """Assert that ``distance`` returns finite losses [C, B, N] on random features, that a prediction
    equal to the probe scores no worse than any other, and that ``from_gram``, if given, agrees."""
    assert isinstance(distance, Distance), f"{distance!r} is not a tap.Distance"
    generator = torch.Generator().manual_seed(seed)
    cached = torch.randn(3, 2, 5, 8, generator=generator, dtype=torch.float64)  # [H, B, N, D]
    probe = torch.randn(2, 5, 8, generator=generator, dtype=torch.float64)
    weights = torch.tensor([[0.0, 0.0, 1.0], [0.0, -1.0, 2.0], [1.0, -3.0, 3.0]], dtype=torch.float64)
    predicted = torch.einsum("ch,hbnd->cbnd", weights, cached)
    with failing_as_assertion(distance.name, "losses of 3 candidates, B=2, N=5, D=8, float64"):
        losses = distance(predicted, probe, cached[-1])
        exact = distance(torch.cat([probe[None], predicted]), probe, cached[-1])
        gram = distance.from_gram(weights, GramStats.of(cached, GramStats.gram_of(cached), probe))
    for name, value, shape in (("losses", losses, (3, 2, 5)), ("losses", exact, (4, 2, 5))):
        assert isinstance(value, torch.Tensor) and tuple(value.shape) == shape, f"{distance.name}: {name} must have shape {shape}, got {value!r}"
        assert bool(torch.isfinite(value).all()), f"{distance.name}: {name} are not finite: {value}"
    assert bool((exact[0] <= exact[1:].min(dim=0).values + 1e-9).all()), (
        f"{distance.name}: a prediction equal to the probe scored worse than another: {exact[:, 0, 0].tolist()}"
    )
    if gram is not None:
        assert isinstance(gram, torch.Tensor) and gram.shape == losses.shape and torch.allclose(gram, losses), (
            f"{distance.name}: from_gram gave {gram}, __call__ gave {losses}"
        )


def check_selector(selector: Selector, shape: tuple[int, int] = (2, 16), candidates: int = 3, seed: int = 0) -> None:
    """Assert that ``select`` returns long indices of ``shape`` into 1..``candidates`` active
    candidates, and, if it reads losses, picks a candidate whose loss is 0 where the others' are 1."""
    assert isinstance(selector, Selector), f"{selector!r} is not a tap.Selector"

    def select(losses: torch.Tensor) -> torch.Tensor:
        count = losses.shape[0]
        labels = [f"candidate-{i}" for i in range(count)]
        with failing_as_assertion(selector.name, f"{count} candidates, shape {shape}"):
            choice = selector.select(losses if selector.needs_losses else None, labels, shape)
        assert isinstance(choice, torch.Tensor) and choice.dtype == torch.long and tuple(choice.shape) == shape, (
            f"{selector.name}: must return long indices of shape {shape}, got {choice!r}"
        )
        assert bool(((choice >= 0) & (choice < count)).all()), f"{selector.name}: indices outside [0, {count}): {choice.unique().tolist()}"
        return choice

    generator = torch.Generator().manual_seed(seed)
    for count in range(1, candidates + 1):
        select(torch.rand(count, *shape, generator=generator))
    losses = torch.ones(candidates, *shape)
    losses[-1] = 0.0
    choice = select(losses)
    if selector.needs_losses:
        assert bool((choice == candidates - 1).all()), f"{selector.name}: did not pick the candidate with loss 0 (the others: 1)"


class _Signals:
    """Probe signals for a schedule check: an error and a change that grow with the steps since the last full one."""

    def __init__(self, since_full: int) -> None:
        self.value = 0.02 * since_full

    def probe_error(self) -> float:
        return self.value

    def probe_change(self) -> float:
        return self.value


def check_schedule(schedule: Schedule, num_steps: int = 50) -> None:
    """Assert that ``is_full`` answers a bool at every step, with the step count known and unknown,
    that ``planned_full_steps`` lists what a generation runs in full (None if it uses the probe, every
    step if the schedule leaves the run alone), and that ``left_alone`` and ``describe`` answer text."""
    assert isinstance(schedule, Schedule), f"{schedule!r} is not a tap.Schedule"
    runs = {}
    for known in (num_steps, None):
        with failing_as_assertion(schedule.name, f"left_alone({known}) and describe({known})"):
            reason, rule = schedule.left_alone(known), schedule.describe(known)
        assert reason is None or isinstance(reason, str), f"{schedule.name}: left_alone({known}) returned {reason!r}, not a str or None"
        assert isinstance(rule, str), f"{schedule.name}: describe({known}) returned {rule!r}, not a str"
        full: list[int] = []
        for step in range(num_steps):
            last = full[-1] if full else None
            view = StepView(step, known, last, len(full), _Signals(step - last) if schedule.uses_probe and full else None)
            with failing_as_assertion(schedule.name, f"is_full at step {step} of {known}, last full step {last}"):
                decision = schedule.is_full(view)
            assert isinstance(decision, bool), f"{schedule.name}: is_full returned {decision!r}, not a bool"
            if not full or decision:  # the runtime always runs the first step in full
                full.append(step)
        runs[known] = full
    with failing_as_assertion(schedule.name, f"planned_full_steps({num_steps})"):
        planned = schedule.planned_full_steps(num_steps)
    if schedule.uses_probe:
        assert planned is None, f"{schedule.name}: uses the probe, so planned_full_steps must be None, got {planned!r}"
    else:
        assert planned == runs[num_steps], f"{schedule.name}: planned_full_steps({num_steps}) = {planned}, but it ran {runs[num_steps]}"
    if schedule.left_alone(num_steps) is not None:
        assert planned in (None, list(range(num_steps))), f"{schedule.name}: leaves {num_steps} steps alone but plans {planned}"
