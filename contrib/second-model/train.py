"""Train a tiny Qwen-Image glyph generator: tap's second *trained* architecture (CPU, wall-clock budget).

    python contrib/second-model/train.py --minutes 25

The model is a diffusers ``QwenImageTransformer2DModel`` with the configuration of the random-weight study in
``contrib/benchmarks/second_model.py`` (6 dual-stream blocks, 4 heads x 32 dims, patch_size 2, in_channels 16,
out_channels 4, joint_attention_dim 64, axes_dims_rope (8, 12, 12)), trained as a conditional pixel-space
rectified-flow generator of the glyphs A-Z a-z 0-9: a 64x64x1 image is packed into 256 tokens of 16 channels
(a 16x16 grid) exactly as the demo pipeline packs it (``pack_pixels``), and the glyph class is turned into 16
text tokens of dim 64 by a learned ``nn.Embedding(len(CHARACTERS) + 1, 16 * 64)``; index ``len(CHARACTERS)`` is
the null prompt (label dropout 0.1, for classifier-free guidance).

Data rendering and augmentation are imported from ``contrib/demo-model/train.py`` (not copied); the loss is the
same as there: x_t = (1 - t) x + t noise with logit-normal t, MSE of the output against noise - x. AdamW
(lr 1e-3, betas 0.9/0.99, wd 0.01), 100 warm-up steps, then a cosine decay to 0.1x over the wall-clock budget,
batch 32, EMA 0.999, bf16 autocast, 2 threads. Training stops after ``--minutes`` and writes the EMA weights
to ``contrib/second-model/weights/`` (also every ``--save-minutes``):

- ``transformer/``: ``save_pretrained`` of the EMA transformer, stored in **float16** (float32 would be ~14.6 MB;
  load it with ``torch_dtype=torch.float32``),
- ``embedding.safetensors``: the EMA label embedding (float32), key ``weight`` [63, 1024],
- ``training.json``: steps, minutes, final loss and the arguments.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import math
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from diffusers import QwenImageTransformer2DModel  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from tap_plugins.demo.pipeline import CHARACTERS, GRID_SIZE, pack_pixels  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
TEXT_TOKENS, TEXT_DIM = 16, 64
NULL_ID = len(CHARACTERS)


def load_demo_train():
    """``contrib/demo-model/train.py`` as a module (for ``render_dataset`` and ``augment``)."""
    spec = importlib.util.spec_from_file_location("demo_model_train", REPO_ROOT / "contrib" / "demo-model" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_transformer() -> QwenImageTransformer2DModel:
    """The architecture of ``contrib/benchmarks/second_model.py``."""
    return QwenImageTransformer2DModel(
        patch_size=2, in_channels=16, out_channels=4, num_layers=6, attention_head_dim=32,
        num_attention_heads=4, joint_attention_dim=TEXT_DIM, axes_dims_rope=(8, 12, 12),
    )


def build_embedding() -> torch.nn.Embedding:
    return torch.nn.Embedding(len(CHARACTERS) + 1, TEXT_TOKENS * TEXT_DIM)


def predict(transformer, embedding, latents: torch.Tensor, labels: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Velocity prediction for packed ``latents`` [B, 256, 16] at t in [0, 1] (the model scales t by 1000)."""
    b = latents.shape[0]
    text = embedding(labels).reshape(b, TEXT_TOKENS, TEXT_DIM)
    return transformer(
        hidden_states=latents, encoder_hidden_states=text,
        encoder_hidden_states_mask=torch.ones(b, TEXT_TOKENS, dtype=torch.long), timestep=t,
        img_shapes=[(1, GRID_SIZE, GRID_SIZE)] * b, return_dict=False,
    )[0]


def flow_matching_loss(transformer, embedding, images, labels, generator) -> torch.Tensor:
    """As ``contrib/demo-model/train.py``: x_t = (1 - t) x + t noise, target noise - x, t logit-normal."""
    x0 = pack_pixels(images)
    noise = torch.randn(x0.shape, generator=generator)
    t = torch.sigmoid(torch.randn(x0.shape[0], generator=generator))
    xt = (1 - t[:, None, None]) * x0 + t[:, None, None] * noise
    prediction = predict(transformer, embedding, xt, labels, t)
    return F.mse_loss(prediction.float(), noise - x0)


def save(ema_transformer, ema_embedding, out: Path, info: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    copy.deepcopy(ema_transformer).to(torch.float16).save_pretrained(out / "transformer")
    save_file({"weight": ema_embedding.weight.detach().float().contiguous()}, str(out / "embedding.safetensors"))
    (out / "training.json").write_text(json.dumps(info, indent=2, default=str) + "\n")


def train(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data_gen = torch.Generator().manual_seed(args.seed + 1)
    demo = load_demo_train()

    glyphs, labels = demo.render_dataset()
    transformer, embedding = build_transformer(), build_embedding()
    modules = [transformer, embedding]
    ema = [copy.deepcopy(m).requires_grad_(False) for m in modules]
    params = [p for m in modules for p in m.parameters()]
    print(f"{len(glyphs)} glyphs; {sum(p.numel() for p in params) / 1e6:.2f}M parameters; "
          f"budget {args.minutes:.1f} min", flush=True)

    optimizer = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.99), weight_decay=0.01)
    budget, warmup = 60 * args.minutes, 100
    start = last_save = time.perf_counter()
    losses: list[float] = []
    step = 0

    def info(done: bool) -> dict:
        tail = losses[-200:]
        return {"steps": step, "minutes": (time.perf_counter() - start) / 60, "finished": done,
                "final_loss_mean_last_200": sum(tail) / max(1, len(tail)), "weights_dtype": "float16 (transformer)",
                "args": {**vars(args), "out": os.path.relpath(args.out, REPO_ROOT)}}

    while True:
        elapsed = time.perf_counter() - start
        if elapsed >= budget:
            break
        frac = min(1.0, elapsed / budget)
        factor = (step + 1) / warmup if step < warmup else 0.1 + 0.45 * (1 + math.cos(math.pi * frac))
        for group in optimizer.param_groups:
            group["lr"] = args.lr * factor

        index = torch.randint(len(glyphs), (args.batch_size,), generator=data_gen)
        cond = labels[index].clone()
        cond[torch.rand(args.batch_size, generator=data_gen) < args.label_dropout] = NULL_ID
        images = demo.augment(glyphs[index], data_gen)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            loss = flow_matching_loss(transformer, embedding, images, cond, data_gen)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()

        decay = min(args.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for m, e in zip(modules, ema):
                torch._foreach_lerp_(list(e.parameters()), list(m.parameters()), 1 - decay)
        losses.append(loss.item())
        step += 1
        if step % 50 == 0:
            print(f"step {step} loss {sum(losses[-50:]) / 50:.4f} lr {args.lr * factor:.2e} "
                  f"{(time.perf_counter() - start) / 60:.1f} min", flush=True)
        if time.perf_counter() - last_save >= 60 * args.save_minutes:
            save(*ema, args.out, info(False))
            last_save = time.perf_counter()
            print(f"saved to {args.out} at step {step}", flush=True)

    save(*ema, args.out, info(True))
    summary = info(True)
    print(f"final loss (mean of last 200 steps): {summary['final_loss_mean_last_200']:.4f}; {step} steps")
    print(f"wall time: {summary['minutes']:.1f} min; weights written to {args.out}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "weights")
    parser.add_argument("--minutes", type=float, default=25.0, help="wall-clock training budget")
    parser.add_argument("--save-minutes", type=float, default=5.0, help="also write the weights this often")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--ema-decay", type=float, default=0.999)
    parser.add_argument("--label-dropout", type=float, default=0.1)
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True, help="bf16 autocast")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


if __name__ == "__main__":
    train(parse_args())
