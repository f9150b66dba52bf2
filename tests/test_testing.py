"""tap.testing: every registered plugin passes its kind's check, and a broken one fails it with an
AssertionError (never another exception) that says what went wrong."""

import attrs
import pytest
import torch

import tap
from conftest import flux_inputs, tiny_flux
from tap.testing import check_distance, check_predictor, check_probe, check_schedule, check_selector


@attrs.frozen
class Linear(tap.LinearPredictor):
    """The line through the last two steps; subclasses break one thing each."""

    name = "test-linear"

    @property
    def history(self):
        return 2

    @property
    def exact_degree(self):
        return 1

    def _weights(self, steps, target):
        offset = (target - steps[1]) / (steps[1] - steps[0])
        return torch.stack([-offset, 1.0 + offset])

    def degrade(self, available):
        return tap.get_predictor("reuse")


class DegradesTooLong(Linear):
    def degrade(self, available):
        return tap.get_predictor("taylor", order=available)  # needs one entry more than available


class DegradesToJunk(Linear):
    def degrade(self, available):
        return "reuse"


class DegradeRaises(Linear):
    def degrade(self, available):
        raise RuntimeError("no degrade today")


class Raises(Linear):
    def _weights(self, steps, target):
        raise RuntimeError("shape mismatch")


class RaisesSometimes(Linear):
    def _weights(self, steps, target):
        if target > 30:
            raise TypeError("late")
        return super()._weights(steps, target)


class ReturnsNaN(Linear):
    def _predict(self, steps, values, target):
        return torch.full(values.shape[1:], float("nan"))


class ReturnsList(Linear):
    def _predict(self, steps, values, target):
        return [0.0]


class FloatDegree(Linear):
    exact_degree = 1.5


class HugeHistory(Linear):
    history = 1000


@pytest.mark.parametrize(
    "predictor, message",
    [
        (DegradesTooLong(), r"degrade\(1\) returned taylor\(order=1\): it needs 2 cached steps"),
        (DegradesToJunk(), r"degrade\(1\) returned 'reuse', not a tap.Predictor"),
        (DegradeRaises(), r"raised RuntimeError: no degrade today \(degrade\(1\)\)"),
        (Raises(), r"raised RuntimeError: shape mismatch \(steps=\[.*\], target="),
        (RaisesSometimes(), r"raised TypeError: late \(steps=\[.*\], target="),
        (ReturnsNaN(), r"misses a polynomial of degree <= 1 \(its exact_degree\): steps="),
        (ReturnsList(), "predict returned list, not a tensor"),
        (FloatDegree(), "exact_degree must be an int >= 0, got 1.5"),
        (HugeHistory(), r"history must be an int in \[1, 61\], got 1000"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, tap.Predictor) else "",
)
def test_check_predictor_fails_only_with_an_assertion_naming_the_problem(predictor, message):
    with pytest.raises(AssertionError, match=message):
        check_predictor(predictor, max_examples=50)


def test_check_predictor_passes_a_correct_one_with_degrade():
    check_predictor(Linear(), max_examples=50)


@pytest.mark.parametrize("name", sorted(tap.distance_names()))
def test_every_registered_distance_passes(name):
    check_distance(tap.get_distance(name))


@pytest.mark.parametrize("name", sorted(tap.selector_names()))
def test_every_registered_selector_passes(name):
    check_selector(tap.get_selector(name))


@pytest.mark.parametrize("name", sorted(set(tap.schedule_names()) - {"listed"}))
def test_every_registered_schedule_passes(name):
    check_schedule(tap.get_schedule(name))


def test_listed_schedule_passes_for_its_step_count():
    check_schedule(tap.get_schedule("listed", steps=[4, 9, 20], num_steps=30), num_steps=30)
    with pytest.raises(AssertionError, match="ConfigError: the listed schedule .* was made for num_inference_steps=30"):
        check_schedule(tap.get_schedule("listed", steps=[4, 9, 20], num_steps=30), num_steps=50)


@pytest.fixture(scope="module")
def flux_block_call():
    """The first block's call in a forward pass of a tiny FLUX, as the runtime hands it to the probe."""
    model, inputs, captured = tiny_flux(), flux_inputs(), {}
    block = model.transformer_blocks[0]
    handle = block.register_forward_pre_hook(lambda _, args, kwargs: captured.update(args=args, kwargs=kwargs), with_kwargs=True)
    with torch.no_grad():
        model(hidden_states=inputs["latents"], encoder_hidden_states=inputs["encoder_hidden_states"],
              pooled_projections=inputs["pooled_projections"], timestep=torch.tensor([0.5]),
              img_ids=inputs["img_ids"], txt_ids=inputs["txt_ids"])
    handle.remove()
    return tap.BlockCall(block, block, captured["args"], captured["kwargs"])


@pytest.mark.parametrize("name", sorted(tap.probe_names()))
def test_every_registered_probe_passes_on_flux(name, flux_block_call):
    with torch.no_grad():
        check_probe(tap.get_probe(name), tap.get_adapter("flux"), flux_block_call)


class Claims(tap.Probe):
    """Says it runs the first block but returns no output."""

    name = "claims"
    runs_first_block = True

    def __call__(self, adapter, call):
        return tap.ProbeResult(adapter.stack_input(call.args, call.kwargs))


class Flat(tap.Probe):
    name = "flat"

    def __call__(self, adapter, call):
        return tap.ProbeResult(adapter.stack_input(call.args, call.kwargs).flatten(1))


class Broken(tap.Probe):
    name = "broken"

    def __call__(self, adapter, call):
        return tap.ProbeResult(call.kwargs["no_such_argument"])


@pytest.mark.parametrize(
    "probe, message",
    [(Claims(), "runs_first_block is set but no block_output"), (Flat(), r"h must be a float tensor \[B, N, D\]"), (Broken(), "raised KeyError")],
    ids=["claims", "flat", "broken"],
)
def test_check_probe_fails_with_an_assertion(probe, message, flux_block_call):
    with torch.no_grad(), pytest.raises(AssertionError, match=message):
        check_probe(probe, tap.get_adapter("flux"), flux_block_call)


class Similarity(tap.Distance):
    """Cosine similarity: larger is better, so the wrong way round."""

    name = "similarity"

    def __call__(self, predicted, probe, last):
        return torch.nn.functional.cosine_similarity(predicted, probe[None], dim=-1)


class GramDisagrees(Similarity):
    name = "gram-disagrees"

    def __call__(self, predicted, probe, last):
        return (predicted - probe).square().sum(-1)

    def from_gram(self, weights, stats):
        return stats.dot(weights)


class WrongShape(Similarity):
    name = "wrong-shape"

    def __call__(self, predicted, probe, last):
        return (predicted - probe).square().sum((-1, -2))


@pytest.mark.parametrize(
    "distance, message",
    [(Similarity(), "a prediction equal to the probe scored worse"), (GramDisagrees(), "from_gram gave"), (WrongShape(), r"must have shape \(3, 2, 5\)")],
    ids=["similarity", "gram-disagrees", "wrong-shape"],
)
def test_check_distance_fails_with_an_assertion(distance, message):
    with pytest.raises(AssertionError, match=message):
        check_distance(distance)


class Argmax(tap.Selector):
    name = "argmax"

    def select(self, losses, labels, shape):
        return losses.argmax(dim=0)


class Floats(tap.Selector):
    name = "floats"

    def select(self, losses, labels, shape):
        return losses.argmin(dim=0).float()


class OutOfRange(tap.Selector):
    name = "out-of-range"
    needs_losses = False

    def select(self, losses, labels, shape):
        return torch.full(shape, 2, dtype=torch.long)


class ReadsLosses(tap.Selector):
    name = "reads-losses"
    needs_losses = False

    def select(self, losses, labels, shape):
        return losses.argmin(dim=0)


@pytest.mark.parametrize(
    "selector, message",
    [
        (Argmax(), "did not pick the candidate with loss 0"),
        (Floats(), "must return long indices of shape"),
        (OutOfRange(), r"indices outside \[0, 1\)"),
        (ReadsLosses(), "raised AttributeError"),
    ],
    ids=["argmax", "floats", "out-of-range", "reads-losses"],
)
def test_check_selector_fails_with_an_assertion(selector, message):
    with pytest.raises(AssertionError, match=message):
        check_selector(selector)


class Tensorial(tap.Schedule):
    name = "tensorial"

    def is_full(self, view):
        return torch.tensor(view.step % 3 == 0)


class NeedsCount(tap.Schedule):
    name = "needs-count"

    def is_full(self, view):
        return view.step >= view.num_steps - 2


class Forgetful(tap.Schedule):
    """Plans every other step but runs every third."""

    name = "forgetful"

    def is_full(self, view):
        return view.step % 3 == 0

    def planned_full_steps(self, num_steps):
        return list(range(0, num_steps, 2))


@pytest.mark.parametrize(
    "schedule, message",
    [(Tensorial(), "is_full returned tensor"), (NeedsCount(), "raised TypeError.*of None"), (Forgetful(), r"planned_full_steps\(50\) = \[0, 2")],
    ids=["tensorial", "needs-count", "forgetful"],
)
def test_check_schedule_fails_with_an_assertion(schedule, message):
    with pytest.raises(AssertionError, match=message):
        check_schedule(schedule)


WITHOUT_HYPOTHESIS = """
import sys
sys.modules["hypothesis"] = None  # a plain install: importing hypothesis fails
import tap, tap.testing
try:
    tap.testing.check_predictor(tap.get_predictor("taylor", order=1))
except tap.testing.MissingTestExtraError as error:
    assert isinstance(error, ImportError) and isinstance(error, tap.TAPError), type(error).__mro__
    print(error)
else:
    raise SystemExit("check_predictor ran without hypothesis")
"""


def test_tap_testing_imports_without_hypothesis():
    """A plain install has no hypothesis: the module imports, and a check that needs it says what to install."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", WITHOUT_HYPOTHESIS], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "pip install 'tap-diffusion[test]'" in done.stdout
