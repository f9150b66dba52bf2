"""Distances, selectors, schedules and candidate families on plain tensors."""

import pytest
import torch
from conftest import sample_flux

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


def test_listed_schedule_made_for_another_step_count_names_both_counts():
    schedule = tap.get_schedule("listed", steps=[4, 8], num_steps=10)
    assert schedule.is_full(StepView(4, 10, 0, 1)) and schedule.is_full(StepView(4, None, 0, 1))
    with pytest.raises(tap.ConfigError, match="num_inference_steps=10, but this generation has 20 steps"):
        schedule.is_full(StepView(4, 20, 0, 1))


@pytest.mark.parametrize(
    ("config", "planned"),
    [
        (dict(interval=4), [0, 4, 8]),
        (dict(interval=4, warmup=2), [0, 1, 5, 9]),
        (dict(interval=5, final_full=2), [0, 5, 8, 9]),
        (dict(schedule="listed", schedule_options={"steps": [3, 7]}), [0, 3, 7]),
        (dict(schedule="probe-refresh"), None),
    ],
)
def test_planned_full_steps_of_each_schedule(config, planned):
    from tap.runtime import build_schedule

    assert build_schedule(tap.TAPConfig(**config)).planned_full_steps(10) == planned


def test_smooth_selector_flips_an_isolated_token_to_its_neighbours_choice():
    # Token 2 alone prefers candidate 1, by less than its neighbours prefer candidate 0.
    losses = torch.tensor([[[0.1, 0.1, 0.5, 0.1, 0.1]], [[0.3, 0.3, 0.4, 0.3, 0.3]]])  # [C=2, B=1, N=5]
    assert tap.get_selector("token").select(losses, ["a", "b"], (1, 5)).tolist() == [[0, 0, 1, 0, 0]]
    assert tap.get_selector("smooth").select(losses, ["a", "b"], (1, 5)).tolist() == [[0, 0, 0, 0, 0]]
    assert tap.get_selector("smooth", window=1).select(losses, ["a", "b"], (1, 5)).tolist() == [[0, 0, 1, 0, 0]]


def test_smooth_selector_averages_only_tokens_inside_the_sequence():
    losses = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])  # [C=1, B=1, N=4]
    smoothed = tap.get_selector("smooth", window=3).smoothed(losses)
    assert torch.allclose(smoothed, torch.tensor([[[1.5, 2.0, 3.0, 3.5]]]))


def test_smooth_selector_in_2d_uses_vertical_neighbours():
    # A 3x3 grid, row-major; gain = loss of candidate 0 minus loss of candidate 1 (> 0 prefers 1).
    # The centre token and its row lean to candidate 0, the tokens above and below it strongly to 1.
    gain = torch.tensor([[0.0, 2.0, 0.0], [-1.0, -0.5, -1.0], [0.0, 2.0, 0.0]]).reshape(1, 9)
    losses = torch.stack([gain, torch.zeros(1, 9)])  # [C=2, B=1, N=9]
    labels = ["a", "b"]
    assert tap.get_selector("token").select(losses, labels, (1, 9))[0, 4] == 0
    one_d = tap.get_selector("smooth", window=3).select(losses, labels, (1, 9))
    assert one_d[0, 4] == 0  # along the sequence the centre sees tokens 3 and 5 only
    two_d = tap.get_selector("smooth", window=3, width=3).select(losses, labels, (1, 9))
    assert two_d[0, 4] == 1  # in the grid it also sees tokens 1 and 7 above and below
    # One row as wide as the sequence is the 1D filter.
    assert torch.equal(tap.get_selector("smooth", window=3, width=9).select(losses, labels, (1, 9)), one_d)


def test_smooth_selector_refuses_a_token_count_that_is_not_a_grid():
    with pytest.raises(ValueError, match="N=10 .*width=4"):
        tap.get_selector("smooth", width=4).select(torch.zeros(2, 1, 10), ["a", "b"], (1, 10))


@pytest.mark.parametrize("options, bad", [({"window": 2}, "2"), ({"window": 0}, "0"), ({"window": 3.0}, "3.0"), ({"width": -1}, "-1")])
def test_smooth_selector_refuses_bad_options(options, bad):
    with pytest.raises(tap.ConfigError, match=f"got {bad}"):
        tap.get_selector("smooth", **options)


def test_margin_selector_keeps_candidate_0_below_the_margin_and_switches_above_it():
    # Candidate 1 is 5%, 20% and 50% below candidate 0; candidate 2 is worse everywhere.
    losses = torch.tensor([[[1.0, 1.0, 1.0]], [[0.95, 0.8, 0.5]], [[2.0, 2.0, 2.0]]])  # [C=3, B=1, N=3]
    labels = ["a", "b", "c"]
    assert tap.get_selector("margin").select(losses, labels, (1, 3)).tolist() == [[0, 1, 1]]  # default 0.1
    assert tap.get_selector("margin", margin=0.3).select(losses, labels, (1, 3)).tolist() == [[0, 0, 1]]
    assert tap.get_selector("margin", margin=0.0).select(losses, labels, (1, 3)).tolist() == [[1, 1, 1]]
    # Above the margin it takes the argmin, not the first candidate that clears it.
    losses = torch.tensor([[[1.0]], [[0.5]], [[0.2]]])
    assert tap.get_selector("margin").select(losses, labels, (1, 1)).tolist() == [[2]]


@pytest.mark.parametrize("bad", [-0.1, "0.1", True])
def test_margin_selector_refuses_bad_options(bad):
    with pytest.raises(tap.ConfigError, match=f"got {bad!r}"):
        tap.get_selector("margin", margin=bad)


@pytest.mark.parametrize("selector, options", [
    ("smooth", {}), ("smooth", {"window": 3, "width": 4}), ("margin", {}), ("margin", {"margin": 0.3}),
])
def test_smoothed_and_margin_selectors_run_end_to_end(flux, selector, options):
    tap.enable(flux, interval=3, orders=(1, 2), selector=selector, selector_options=options)
    latents, outputs = sample_flux(flux, steps=12)  # 16 tokens: a 4x4 grid
    assert torch.isfinite(latents).all() and all(torch.isfinite(o).all() for o in outputs)
    stats = tap.stats(flux)
    assert stats.predicted_steps == 8 and set(stats.candidate_share) <= {"taylor(order=1)", "taylor(order=2)"}


def test_smooth_selector_width_that_does_not_divide_the_tokens_fails_at_the_first_selection(flux):
    tap.enable(flux, interval=3, orders=(1, 2), selector="smooth", selector_options={"width": 5})
    with pytest.raises(tap.PluginError, match="selector 'smooth' failed: ValueError: .*N=16 .*width=5"):
        sample_flux(flux, steps=12)
