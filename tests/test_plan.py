"""``tap.plan``: the DP's optimum, what it records, the self-check, argument checks and ``tap plan``; refining a placement."""

import itertools
import json

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

import tap
import tap.planning as planning
from tap.placement import refine_placement
from tap.family import active_set
from tap.planning import CoherentCosts, StepCosts, best_placement, make_plan, uniform_grid

from conftest import flux_inputs, sample_flux, tap_cli


def loop_sigmas(steps: int) -> torch.Tensor:
    """The sigmas of :func:`sample_flux`'s scheduler, as a hand-written loop gives them to ``tap.plan``."""
    scheduler = FlowMatchEulerDiscreteScheduler()
    scheduler.set_timesteps(steps)
    return scheduler.sigmas


def synthetic_gram(steps: int, seed: int) -> np.ndarray:
    """Inner products of a random walk of residuals: a smooth trajectory like a sampler's."""
    walk = np.random.default_rng(seed).normal(size=(steps, 6)).cumsum(axis=0)
    return walk @ walk.T


@pytest.mark.parametrize("config", [tap.TAPConfig(), tap.TAPConfig(orders=(1, 2)), tap.TAPConfig(predictor="reuse", orders=(0,)),
                                    tap.TAPConfig(orders=(2,), warmup=2), tap.TAPConfig.preset("paper")], ids=str)
@pytest.mark.parametrize("steps, full", [(8, 3), (9, 4), (7, 1), (6, 6)])
def test_dp_finds_the_brute_force_optimum(config, steps, full):
    if full < config.warmup:
        pytest.skip("fewer full steps than the warm-up")
    costs = StepCosts(synthetic_gram(steps, seed=steps * 10 + full), config.family())
    placed, error = best_placement(costs, full, config.warmup)
    start = list(range(config.warmup))
    brute = min(costs.cost([*start, *rest]) for rest in itertools.combinations(range(config.warmup, steps), full - config.warmup))
    assert len(placed) == full and placed[: config.warmup] == start
    assert error == pytest.approx(brute) and costs.cost(placed) == pytest.approx(brute)


def test_step_weights_scale_each_predicted_steps_error_and_the_dp_follows_them():
    family, gram = tap.TAPConfig().family(), synthetic_gram(9, seed=3)
    plain, placement = StepCosts(gram, family), [0, 4, 6]
    each = [StepCosts(gram, family, np.eye(9)[step]).cost(placement) for step in range(9)]  # one step's error alone
    assert all(each[step] == 0 for step in placement) and all(each[step] > 0 for step in range(9) if step not in placement)
    assert sum(each) == pytest.approx(plain.cost(placement))
    weights = np.linspace(0.5, 3.0, 9)
    weighted = StepCosts(gram, family, weights)
    assert weighted.cost(placement) == pytest.approx(float(np.dot(weights, each)))
    placed, error = best_placement(weighted, 3)
    brute = min(weighted.cost([0, *rest]) for rest in itertools.combinations(range(1, 9), 2))
    assert error == pytest.approx(brute) and weighted.cost(placed) == pytest.approx(brute)


@pytest.mark.parametrize("config", [tap.TAPConfig(), tap.TAPConfig(orders=(1, 2)), tap.TAPConfig.preset("paper")], ids=str)
@pytest.mark.parametrize("steps, full", [(8, 3), (9, 4)])
def test_dp_finds_the_brute_force_optimum_of_the_coherent_cost(config, steps, full):
    sizes = np.random.default_rng(steps).uniform(0.5, 2.0, steps)
    costs = CoherentCosts(synthetic_gram(steps, seed=steps + full), config.family(), step_sizes=sizes)
    placed, error = best_placement(costs, full, config.warmup)
    brute = min(costs.cost([0, *rest]) for rest in itertools.combinations(range(1, steps), full - 1))
    assert error == pytest.approx(brute) and costs.cost(placed) == pytest.approx(brute)


def test_uniform_grid_is_taps_fixed_grid_when_one_has_that_many_full_steps():
    assert uniform_grid(50, 9) == [0, 6, 12, 18, 24, 30, 36, 42, 48]
    assert uniform_grid(50, 13) == list(range(0, 50, 4))
    spread = uniform_grid(20, 6)  # no interval gives 6 of 20
    assert len(spread) == 6 and spread[0] == 0 and spread == sorted(set(spread))


def plain_residuals(flux, steps: int) -> torch.Tensor:
    """The block stack's residuals [steps, B, N, D] of a plain run (float64), from hooks on the first and last blocks."""
    blocks = [*flux.transformer_blocks, *flux.single_transformer_blocks]
    inputs, residuals = [], []
    first = blocks[0].register_forward_pre_hook(lambda m, a, k: inputs.append(k.get("hidden_states", a[0] if a else None)), with_kwargs=True)
    last = blocks[-1].register_forward_hook(lambda m, a, o: residuals.append(o[1].double() - inputs[-1].double()))
    try:
        sample_flux(flux, steps=steps)
    finally:
        first.remove()
        last.remove()
    return torch.stack(residuals)


def plain_residual_gram(flux, steps: int, tokens=None) -> np.ndarray:
    """<r_s, r_t> over the steps of a plain run (see :func:`plain_residuals`), on ``tokens`` evenly spaced tokens."""
    r = plain_residuals(flux, steps)
    if tokens is not None:
        r = r[:, :, torch.linspace(0, r.shape[2] - 1, tokens).round().long()]
    flat = r.reshape(steps, -1)
    return (flat @ flat.T).numpy()


@pytest.mark.parametrize("tokens", [None, 5])
def test_recorded_residuals_are_those_of_a_plain_run(flux, tokens):
    expected = plain_residual_gram(flux, steps=6, tokens=tokens)
    recorder, (latents, _) = planning.record(flux, lambda: sample_flux(flux, steps=6), 6, tap.TAPConfig(), tokens)
    assert recorder.generations == 1
    np.testing.assert_allclose(recorder.gram, expected, rtol=1e-6)
    plain, _ = sample_flux(flux, steps=6)
    assert torch.equal(latents, plain)  # recording computes every step: exactly the plain model


@pytest.mark.parametrize("config", [tap.TAPConfig(), tap.TAPConfig.preset("token")], ids=["taylor-1", "taylor-1-2"])
def test_the_coherent_cost_is_the_summed_error_vector_of_each_run_of_the_recorded_residuals(flux, config):
    r, steps, placement = plain_residuals(flux, 8).reshape(8, -1), 8, [0, 1, 4]
    recorder, _ = planning.record(flux, lambda: sample_flux(flux, steps=steps), steps, config, None)
    sizes = np.linspace(0.3, 0.1, steps)
    coherent = CoherentCosts(recorder.gram, config.family(), step_sizes=sizes)
    family, total, cached, run = config.family(), 0.0, (), torch.zeros_like(r[0])
    for step in range(steps):
        if step in placement:
            total, cached, run = total + float(run @ run), (*cached, step)[-coherent.history :], torch.zeros_like(r[0])
            continue
        active = active_set(family, cached, step)  # each step's error is its best candidate's
        errors = [r[step] - sum(float(w) * r[c] for w, c in zip(active.weights[i], cached)) for i in range(len(active.indices))]
        run = run + sizes[step] * min(errors, key=lambda e: float(e @ e))
    total += float(run @ run)
    assert coherent.cost(placement) == pytest.approx(total, rel=1e-6)


class SchedulerPipeline:
    """A pipeline whose loop steps its own ``scheduler`` (as diffusers' pipelines do), holding a tiny FLUX."""

    def __init__(self, transformer, shift: float) -> None:
        self.transformer, self.scheduler = transformer, FlowMatchEulerDiscreteScheduler(shift=shift)
        self.components = {"transformer": transformer, "scheduler": self.scheduler}

    def __call__(self, steps: int) -> torch.Tensor:
        inputs = flux_inputs()
        latents = inputs.pop("latents")
        self.scheduler.set_timesteps(steps)
        for t in self.scheduler.timesteps:
            output = self.transformer(hidden_states=latents, timestep=(t / 1000).expand(1), return_dict=False, **inputs)[0]
            latents = self.scheduler.step(output, t, latents, return_dict=False)[0]
        return latents


def test_the_step_sizes_are_read_from_the_pipelines_scheduler_or_given(flux, monkeypatch):
    found = {}

    def make_costs(name, gram, family, sigmas):
        found[name] = sigmas
        return original(name, gram, family, sigmas)

    original = planning.make_costs
    monkeypatch.setattr(planning, "make_costs", make_costs)
    pipe = SchedulerPipeline(flux, shift=3.0)
    result = make_plan(pipe, lambda: pipe(6), full_steps=3, num_steps=6, cost_model="coherent-euler", check=False)
    np.testing.assert_allclose(found["coherent-euler"], pipe.scheduler.sigmas.double().numpy(), rtol=1e-6)
    assert len(set(np.round(np.diff(found["coherent-euler"]), 6))) > 1  # shift 3: the steps differ
    assert result.cost_model == "coherent-euler"
    sigmas = np.linspace(1.0, 0.0, 7) ** 2
    result = make_plan(flux, lambda: sample_flux(flux, steps=6)[0], full_steps=3, num_steps=6, cost_model="coherent-euler", sigmas=sigmas, check=False)
    np.testing.assert_allclose(found["coherent-euler"], sigmas)
    assert result.cost_model == "coherent-euler"
    with pytest.warns(UserWarning, match="no sampler sigmas"):  # a hand-written loop: no scheduler to read
        result = make_plan(flux, lambda: sample_flux(flux, steps=6)[0], full_steps=3, num_steps=6, cost_model="coherent-euler", check=False)
    assert result.cost_model == "squared" and found["coherent-euler"] is None
    with pytest.warns(UserWarning, match="cost_model='coherent-gain' falls back to 'squared'"):  # the default, likewise
        assert make_plan(flux, lambda: sample_flux(flux, steps=6)[0], full_steps=3, num_steps=6, check=False).cost_model == "squared"
    with pytest.raises(tap.ConfigError, match="num_steps \\+ 1 = 7 values"):
        make_plan(flux, lambda: sample_flux(flux, steps=6)[0], full_steps=3, num_steps=6, sigmas=[1.0, 0.0])


def test_the_default_cost_model_is_coherent_gain_with_the_pipelines_sigmas(flux):
    pipe = SchedulerPipeline(flux, shift=1.0)
    result = make_plan(pipe, lambda: pipe(6), full_steps=3, num_steps=6, check=False)
    assert result.cost_model == planning.DEFAULT_COST_MODEL == "coherent-gain"  # without sigmas it would say 'squared'


def test_coherent_gain_weighs_each_step_by_its_size_times_the_gain_to_the_end():
    family, gram, sigmas = tap.TAPConfig().family(), synthetic_gram(9, seed=5), np.linspace(1.0, 0.0, 10)
    assert planning.x0_gain(np.array([0.0, 1.0, 0.0])) == pytest.approx([planning.DATA_SCALE, 1.0])
    costs, used = planning.make_costs("coherent-gain", gram, family, sigmas)
    expected = CoherentCosts(gram, family, step_sizes=np.full(9, 1 / 9) * planning.x0_gain(sigmas))
    assert used == "coherent-gain" and costs.cost([0, 3, 5]) == pytest.approx(expected.cost([0, 3, 5]))
    with pytest.warns(UserWarning, match="flow-matching sigmas"):  # e.g. an EDM schedule: step sizes only
        costs, used = planning.make_costs("coherent-gain", gram, family, np.linspace(80.0, 0.0, 10))
    assert used == "coherent-euler" and costs.cost([0, 3, 5]) == pytest.approx(
        CoherentCosts(gram, family, step_sizes=np.full(9, 80 / 9)).cost([0, 3, 5]))


def test_bad_cost_models_are_refused_before_anything_runs(flux):
    ran = []
    with pytest.raises(tap.ConfigError, match="cost_model must be one of 'squared', 'coherent', 'coherent-euler', 'coherent-gain', got 'cubic'"):
        tap.plan(flux, lambda: ran.append(1), full_steps=3, num_steps=10, cost_model="cubic")
    assert not ran


def test_plan_round_trips_and_enable_runs_exactly_the_planned_full_steps(flux, tmp_path):
    config = tap.plan(flux, lambda: sample_flux(flux, steps=10)[0], full_steps=4, num_steps=10, sigmas=loop_sigmas(10))
    steps = config.schedule_options["steps"]
    assert config.schedule == "listed" and config.schedule_options["num_steps"] == 10 and len(steps) == 4 and steps[0] == 0
    config.save(tmp_path / "plan.json")
    loaded = tap.TAPConfig.load(tmp_path / "plan.json")
    assert loaded == config
    with tap.accelerate(flux, loaded) as handle:
        sample_flux(flux, steps=10)
        assert handle.stats().full_steps == 4 and handle.stats().predicted_steps == 6


def test_a_hand_written_loop_with_cache_contexts_works_as_run(flux):
    def run():
        return [sample_flux(flux, steps=8, context=name, seed=seed)[0] for name in ("cond", "uncond") for seed in (0, 1)]

    result = make_plan(flux, run, full_steps=3, num_steps=8, config=tap.TAPConfig.preset("token"), sigmas=loop_sigmas(8))
    assert result.generations == 4  # two samples in each of two contexts
    assert result.planned_error <= result.grid_error
    if result.planned != result.grid:  # the self-check ran: the closer placement is kept
        assert result.kept == ("grid" if result.grid_psnr > result.planned_psnr else "planned")
    assert result.config.orders == (1, 2)  # the base family is kept


@pytest.mark.parametrize("cost_model", ["squared", "coherent-euler"])
def test_the_self_check_keeps_the_grid_when_the_plan_scores_worse(flux, monkeypatch, cost_model):
    def closeness(references, outputs):  # the plan's placement is rated below the grid's
        return 10.0 if scored.append(outputs) or len(scored) == 1 else 20.0

    scored = []
    monkeypatch.setattr(planning, "closeness", closeness)
    result = make_plan(flux, lambda: sample_flux(flux, steps=10)[0], full_steps=3, num_steps=10, cost_model=cost_model,
                       sigmas=np.linspace(1, 0, 11) ** 2)
    assert result.planned != result.grid and len(scored) == 2
    assert result.kept == "grid" and result.steps == uniform_grid(10, 3)
    assert (result.planned_psnr, result.grid_psnr) == (10.0, 20.0)


@pytest.mark.parametrize("margin, planned_psnr, kept", [
    (0.0, 20.3, "planned"), (None, 20.3, "grid"), (None, 20.6, "planned"), (1.0, 20.6, "grid"),  # None: the default, 0.5 dB
])
def test_the_check_margin_keeps_the_grid_unless_the_plan_wins_by_that_much(flux, monkeypatch, margin, planned_psnr, kept):
    scored = []
    monkeypatch.setattr(planning, "closeness", lambda references, outputs: planned_psnr if scored.append(1) or len(scored) == 1 else 20.0)
    options = {} if margin is None else {"check_margin": margin}
    result = make_plan(flux, lambda: sample_flux(flux, steps=10)[0], full_steps=3, num_steps=10, sigmas=loop_sigmas(10), **options)
    assert result.planned != result.grid and result.kept == kept
    with pytest.raises(tap.ConfigError, match="check_margin must be a number of dB >= 0, got -1"):
        make_plan(flux, lambda: None, full_steps=3, num_steps=10, check_margin=-1)


@pytest.mark.parametrize("gain, kept", [(0.6, "refined"), (0.3, "planned")])
def test_the_refinement_starts_from_the_checked_placement_and_is_kept_if_it_wins_by_the_margin(flux, monkeypatch, gain, kept):
    starts = []

    def refine(steps, score, *, num_steps, warmup, sweeps, moves):
        starts.append((list(steps), num_steps, warmup, sweeps, moves))
        return [*steps[:-1], steps[-1] + 1], score(steps) + gain

    scored = []
    monkeypatch.setattr(planning, "refine_placement", refine)
    monkeypatch.setattr(planning, "closeness", lambda references, outputs: 21.0 if scored.append(1) or len(scored) == 1 else 20.0)
    result = make_plan(flux, lambda: sample_flux(flux, steps=10)[0], full_steps=3, num_steps=10, sigmas=loop_sigmas(10), refine=2)
    assert starts == [(result.planned, 10, 1, 2, planning.REFINE_MOVES)]  # the DP's placement won the check (21 > 20 + 0.5)
    assert result.refined == [*result.planned[:-1], result.planned[-1] + 1] and result.refined_psnr == 21.0 + gain
    assert result.kept == kept and result.evaluations == 2  # the start's score was cached


def test_a_refined_plan_scores_what_its_placement_generates(flux):
    run = lambda: [sample_flux(flux, steps=10, seed=seed)[0] for seed in (0, 1)]
    references = planning.as_arrays(run())
    result = make_plan(flux, run, full_steps=3, num_steps=10, sigmas=loop_sigmas(10), check_margin=0.0, refine=1)
    assert len(result.refined) == 3 and result.refined[0] == 0 and result.refined == sorted(set(result.refined))
    assert result.evaluations > 2 and result.refined_psnr >= max(result.planned_psnr, result.grid_psnr)
    with tap.accelerate(flux, result.config.replace(schedule_options={"steps": result.refined, "num_steps": 10})):
        assert planning.closeness(references, run()) == result.refined_psnr
    assert result.steps == result.refined  # margin 0: a placement at least as close is kept


@pytest.mark.parametrize("refine", [-1, True, 1.5])
def test_bad_refinements_are_refused_before_anything_runs(flux, refine):
    ran = []
    with pytest.raises(tap.ConfigError, match="refine must be an int >= 0"):
        tap.plan(flux, lambda: ran.append(1), full_steps=3, num_steps=10, refine=refine)
    assert not ran


def test_refinement_climbs_to_a_better_placement_one_move_at_a_time():
    target = [0, 3, 9, 14]
    calls = []

    def score(steps):
        calls.append(steps)
        assert steps[0] == 0 and steps == sorted(set(steps)) and steps[-1] < 16  # the warm-up stays, order and range hold
        return -sum(abs(a - b) for a, b in zip(steps, target))

    steps, best = refine_placement([0, 5, 10, 15], score, num_steps=16, warmup=1, sweeps=3)
    assert (steps, best) == (target, 0)
    assert len(calls) <= 1 + 3 * 3 * 4  # the start, then at most four moves of three steps per pass
    calls.clear()
    assert refine_placement(target, score, num_steps=16, warmup=1, sweeps=5) == (target, 0)
    assert len(calls) == 1 + 4 + 4 + 3  # one pass without a gain ends it; 14 + 2 would leave the 16 steps
    assert refine_placement([0, 5, 10, 15], score, num_steps=16, warmup=1, sweeps=0) == ([0, 5, 10, 15], -4)


def test_the_self_check_needs_runs_outputs(flux):
    with pytest.raises(tap.ConfigError, match="run returned no outputs"):
        make_plan(flux, lambda: None if sample_flux(flux, steps=10) else None, full_steps=3, num_steps=10, sigmas=loop_sigmas(10))
    assert make_plan(flux, lambda: None if sample_flux(flux, steps=10) else None, full_steps=3, num_steps=10, check=False,
                     sigmas=loop_sigmas(10)).planned_psnr is None


@pytest.mark.parametrize("full, steps, message", [
    (11, 10, "full_steps=11 is more than num_steps=10"),
    (0, 10, "full_steps must be an int >= 1, got 0"),
    (3, 0, "num_steps must be an int >= 1, got 0"),
])
def test_bad_counts_are_refused_before_anything_runs(flux, full, steps, message):
    ran = []
    with pytest.raises(tap.ConfigError, match=message):
        tap.plan(flux, lambda: ran.append(1), full_steps=full, num_steps=steps)
    assert not ran and getattr(flux, "_tap_handle", None) is None


@pytest.mark.parametrize("sampled, message", [(12, "more than num_steps=10"), (8, "a generation of 8 steps")])
def test_a_run_with_another_step_count_is_refused(flux, sampled, message):
    with pytest.raises(tap.ConfigError, match=message):
        tap.plan(flux, lambda: sample_flux(flux, steps=sampled)[0], full_steps=3, num_steps=10)
    assert getattr(flux, "_tap_handle", None) is None  # tap was removed again


def test_families_the_cost_model_cannot_score_are_refused(flux):
    with pytest.raises(tap.ConfigError, match="up to 3 full steps"):
        tap.plan(flux, lambda: None, full_steps=3, num_steps=10, config=tap.TAPConfig(orders=(3,)))
    with pytest.raises(tap.ConfigError, match="run made no generation"):
        tap.plan(flux, lambda: flux_inputs(), full_steps=3, num_steps=10)


def test_plan_command_writes_a_preset_that_generate_accepts(tmp_path, capsys):
    preset = tmp_path / "plan.json"
    code, out, err = tap_cli(capsys, "plan", "--prompts", "A", "--steps", "8", "--full-steps", "3", "--refine", "1", "--out", str(preset))
    assert code == 0, err
    assert "saved preset" in out and "tap plan" in err  # the progress bar
    assert "refined " in out and "runs with tap" in out and "cost model: coherent-gain" in out
    options = json.loads(preset.read_text())["config"]["schedule_options"]
    assert options["num_steps"] == 8 and len(options["steps"]) == 3
    code, out, err = tap_cli(capsys, "generate", "--steps", "8", "--preset", str(preset), "--json", "--out", str(tmp_path / "x.png"))
    assert code == 0, err
    assert json.loads(out)["full_steps"] == 3


@pytest.mark.parametrize("args, message", [
    (["--full-steps", "9", "--steps", "8"], "full_steps=9 is more than num_steps=8"),
    (["--full-steps", "0"], "--full-steps must be >= 1, got 0"),
    (["--full-steps", "3", "--out", "plan.txt"], "--out must end in .json"),
    (["--full-steps", "3", "--cost-model", "cubic"], "cost_model must be one of 'squared', 'coherent', 'coherent-euler'"),
    (["--full-steps", "3", "--refine", "-1"], "--refine must be >= 0"),
    (["--full-steps", "3", "--model", "/no/such/model"], "could not load pipeline"),
])
def test_plan_command_refuses_bad_arguments(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = tap_cli(capsys, "plan", *args)
    assert code == 2 and message in err
