"""``tap plan``: load a model, plan its full steps with :func:`tap.planning.make_plan`, save the preset."""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm import tqdm

from tap.cli.generate import DEMO_MODEL, DTYPES, check_writable, load_pipeline, run_pipeline
from tap.config import TAPConfig
from tap.errors import ConfigError
from tap.planning import COST_MODELS, DEFAULT_CHECK_MARGIN, DEFAULT_COST_MODEL, check_arguments, check_cost_model, make_plan


def plan_command(args) -> int:
    """Validate everything, load the model, plan, save the preset and say what was kept."""
    config = TAPConfig.preset(args.preset)
    for name in ("steps", "full_steps"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    check_arguments(args.full_steps, args.steps, config)
    check_cost_model(args.cost_model)
    if args.refine < 0:
        raise ConfigError(f"--refine must be >= 0 (passes of the refinement; 0 skips it), got {args.refine}")
    out = Path(args.out)
    if out.suffix != ".json":
        raise ConfigError(f"--out must end in .json (a preset file for --preset), got {args.out!r}")
    check_writable(out)
    samples = [(prompt, seed) for prompt in args.prompts for seed in args.seeds]
    with torch.no_grad():
        pipe = load_pipeline(args.model, args.device, DTYPES[args.dtype])
        pipe.set_progress_bar_config(disable=True)
        total = None if args.refine else len(samples) * (1 if args.no_check else 3)  # refining: as many as it takes
        with tqdm(total=total, desc="tap plan", unit="generation") as bar:

            def run():
                outputs = []
                for prompt, seed in samples:
                    outputs.append(run_pipeline(pipe, prompt, args.steps, seed, args.device, "", quiet=True)[0])
                    bar.update(1)
                return outputs

            result = make_plan(pipe, run, full_steps=args.full_steps, num_steps=args.steps, config=config, check=not args.no_check,
                               cost_model=args.cost_model, check_margin=args.check_margin, refine=args.refine)
    result.config.save(out)
    scored = [f"{name} {psnr:.2f} dB" for name, psnr in (("planned", result.planned_psnr), ("uniform grid", result.grid_psnr),
                                                          ("refined", result.refined_psnr)) if psnr is not None]
    if scored:
        print(f"calibration PSNR: {', '.join(scored)}")
    print(f"cost model: {result.cost_model}")
    named = {"planned": "the planned placement", "grid": "the uniform grid", "refined": "the refined placement"}
    print(f"kept {named[result.kept]}: full steps {result.steps} of {args.steps}")
    print(f"calibration {result.calibration_seconds:.2f} s, planning {result.planning_seconds:.3f} s, "
          f"check and refinement {result.check_seconds:.2f} s ({result.evaluations} runs with tap)")
    print(f"saved preset {out}: tap.enable(pipe, preset={str(out)!r}) or tap generate --preset {out} --steps {args.steps}")
    return 0


def add_plan_command(commands) -> None:
    parser = commands.add_parser("plan", help="place the full steps for a model and step count from calibration generations")
    parser.add_argument("--model", default=DEMO_MODEL, help="'demo' (bundled), a Hugging Face id or a local pipeline folder")
    parser.add_argument("--prompts", nargs="+", default=["g", "A", "7"], help="calibration prompts")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1])
    parser.add_argument("--steps", type=int, default=50, help="num_inference_steps the plan is for")
    parser.add_argument("--full-steps", type=int, required=True, help="how many steps run the whole block stack")
    parser.add_argument("--preset", default="default", help="the predictor family to plan for: a preset name or file")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    parser.add_argument("--cost-model", default=DEFAULT_COST_MODEL, metavar="NAME",
                        help=f"what the placement minimises: {', '.join(COST_MODELS)} (default {DEFAULT_COST_MODEL}); "
                             "the coherent-euler and coherent-gain models read the sigmas from the pipeline's scheduler")
    parser.add_argument("--check-margin", type=float, default=DEFAULT_CHECK_MARGIN, metavar="DB",
                        help="keep the planned placement only if it beats the grid by at least this many dB on the calibration "
                             f"samples (default {DEFAULT_CHECK_MARGIN:g})")
    parser.add_argument("--no-check", action="store_true", help="keep the DP's placement without comparing it with the grid")
    parser.add_argument("--refine", type=int, default=0, metavar="PASSES",
                        help="then move single full steps by one step while the calibration samples come closer, for up to "
                             "this many passes (each move tried is one more run of the samples; 0: off)")
    parser.add_argument("--out", default="tap-plan.json", help="preset file to write")
    parser.set_defaults(run=plan_command)
