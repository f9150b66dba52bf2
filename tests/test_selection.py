"""Distances, selectors, schedules and candidate families on plain tensors."""

import pytest
import torch

import tap
from tap.distance import GramStats
from tap.family import Candidate, active_set
from tap.schedule import StepView


@pytest.mark.parametrize("name", ["cosine", "l2", "change"])
def test_gram_form_equals_materialised_predictions(name):
    generator = torch.Generator().manual_seed(0)
    cached = torch.randn(3, 2, 5, 8, generator=generator, dtype=torch.float64)  # [H, B, N, D]
    probe = torch.randn(2, 5, 8, generator=generator, dtype=torch.float64)
    weights = torch.randn(7, 3, generator=generator, dtype=torch.float64)  # 7 candidates
    distance = tap.get_distance(name)
    predicted = torch.einsum("ch,hbnd->cbnd", weights, cached)
    expected = distance(predicted, probe, cached[-1])
    fast = distance.from_gram(weights, GramStats.of(cached, GramStats.gram_of(cached), probe))
    assert torch.allclose(fast, expected, atol=1e-9)


def test_cosine_distance_is_zero_for_a_perfect_prediction_and_change_ignores_the_static_part():
    cached = torch.tensor([[[[1.0, 0.0]]], [[[1.0, 0.1]]]])  # h moves slowly around a big static part
    probe = torch.tensor([[[1.0, 0.2]]])
    reuse, linear = torch.tensor([[0.0, 1.0]]), torch.tensor([[-1.0, 2.0]])
    stats = GramStats.of(cached, GramStats.gram_of(cached), probe)
    cosine, change = tap.get_distance("cosine"), tap.get_distance("change")
    assert float(cosine.from_gram(linear, stats)) == pytest.approx(0.0, abs=1e-7)
    assert float(cosine.from_gram(reuse, stats)) < 0.01  # plain cosine barely tells reuse from the truth
    assert float(change.from_gram(reuse, stats)) == pytest.approx(1.0)  # change: reuse predicts no change at all


def test_selectors():
    losses = torch.tensor([[[0.1, 0.9, 0.5]], [[0.2, 0.1, 0.4]]])  # [C=2, B=1, N=3]
    assert tap.get_selector("token").select(losses, ["a", "b"], (1, 3)).tolist() == [[0, 1, 1]]
    assert tap.get_selector("global").select(losses, ["a", "b"], (1, 3)).tolist() == [[1, 1, 1]]
    assert tap.get_selector("fixed", candidate=1).select(None, ["a", "b"], (1, 3)).tolist() == [[1, 1, 1]]
    assert not tap.get_selector("fixed").needs_losses


def test_fixed_interval_schedule():
    schedule = tap.get_schedule("fixed", interval=4, warmup=2, final_full=2)
    full = [s for s in range(20) if schedule.is_full(StepView(s, 20, None, 0))]
    assert full == [0, 1, 5, 9, 13, 17, 18, 19]
    no_count = tap.get_schedule("fixed", interval=4, warmup=1, final_full=2)
    assert [s for s in range(10) if no_count.is_full(StepView(s, None, None, 0))] == [0, 4, 8]


def test_paper_family_has_15_candidates_and_horizons_activate_with_distance():
    family = tap.TAPConfig.preset("paper").family()
    assert len(family) == 15
    # Three cached full steps, two steps after the last one: shifts -4..-2 land on or before it.
    active = active_set(family, (0, 6, 12), 14)
    assert len(active.indices) == 6 and set(active.targets) == {13, 14}
    # One cached step: order 1 and 2 degrade to order 0 (reuse).
    early = active_set(family, (0,), 3)
    assert torch.allclose(early.weights, torch.ones(len(early.indices), 1, dtype=torch.float64))


def test_candidate_labels_and_validation():
    candidate = Candidate(tap.get_predictor("taylor", order=2), horizon=-1)
    assert candidate.label == "taylor(order=2)@-1"
    with pytest.raises(ValueError):
        Candidate(tap.get_predictor("taylor"), horizon=1)


def test_config_round_trips_through_a_preset_file(tmp_path, flux):
    config = tap.TAPConfig(interval=5, schedule="probe-refresh", schedule_options={"threshold": 0.1},
                           candidates=(Candidate(tap.get_predictor("hermite", order=2, scale=0.7), -1),))
    path = tmp_path / "tuned.json"
    config.save(path)
    assert tap.TAPConfig.load(path) == config
    assert tap.TAPConfig.preset(str(path), interval=7).interval == 7
    handle = tap.enable(flux, preset=str(path))
    assert handle.config == config


def test_bad_preset_files_are_refused(tmp_path):
    with pytest.raises(tap.ConfigError, match="unknown preset 'nope'"):
        tap.TAPConfig.preset("nope")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(tap.ConfigError, match="not a tap preset file"):
        tap.TAPConfig.preset(str(tmp_path / "bad.json"))
    with pytest.raises(tap.ConfigError, match="cannot read preset file"):
        tap.TAPConfig.preset(str(tmp_path / "missing.json"))


def test_listed_schedule_runs_exactly_the_listed_steps_after_the_warmup():
    schedule = tap.get_schedule("listed", steps=[9, 3, 3], warmup=2)
    assert schedule.steps == (3, 9)
    assert [s for s in range(12) if schedule.is_full(StepView(s, 12, None, 0))] == [0, 1, 3, 9]
