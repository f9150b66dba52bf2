"""A tiny pixel-space FLUX pipeline that draws one character as a 64x64 grayscale image.

It exists so that tap has a real (trained) diffusion transformer that runs offline on a CPU: the transformer is a
stock `diffusers.FluxTransformer2DModel` called exactly as `FluxPipeline` calls it, so anything tap does to FLUX
(caching, block skipping, ...) can be exercised on it in seconds.
"""

from __future__ import annotations

import string
from typing import Callable, Sequence

import diffusers
import torch
from diffusers import (
    ConfigMixin,
    DiffusionPipeline,
    FlowMatchEulerDiscreteScheduler,
    FluxTransformer2DModel,
    ImagePipelineOutput,
    ModelMixin,
)
from diffusers.configuration_utils import register_to_config
from diffusers.utils.torch_utils import randn_tensor
from torch import nn

CHARACTERS = string.ascii_uppercase + string.ascii_lowercase + string.digits
IMAGE_SIZE = 64
PATCH_SIZE = 4
GRID_SIZE = IMAGE_SIZE // PATCH_SIZE


def pack_pixels(images: torch.Tensor) -> torch.Tensor:
    """Turn [B, 1, 64, 64] images into [B, 256, 16] tokens, one per 4x4 patch (FLUX's 2x2 latent packing, in pixels)."""
    b = images.shape[0]
    x = images.reshape(b, GRID_SIZE, PATCH_SIZE, GRID_SIZE, PATCH_SIZE)
    return x.permute(0, 1, 3, 2, 4).reshape(b, GRID_SIZE * GRID_SIZE, PATCH_SIZE * PATCH_SIZE)


def unpack_pixels(tokens: torch.Tensor) -> torch.Tensor:
    """Inverse of `pack_pixels`: [B, 256, 16] tokens back to [B, 1, 64, 64] images."""
    b = tokens.shape[0]
    x = tokens.reshape(b, GRID_SIZE, GRID_SIZE, PATCH_SIZE, PATCH_SIZE)
    return x.permute(0, 1, 3, 2, 4).reshape(b, 1, IMAGE_SIZE, IMAGE_SIZE)


def image_ids(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """FLUX position ids [256, 3] of the patch grid: (0, row, column), as `FluxPipeline._prepare_latent_image_ids`."""
    rows, cols = torch.meshgrid(torch.arange(GRID_SIZE), torch.arange(GRID_SIZE), indexing="ij")
    ids = torch.stack([torch.zeros_like(rows), rows, cols], dim=-1).reshape(-1, 3)
    return ids.to(device=device, dtype=dtype)


class GlyphEncoder(ModelMixin, ConfigMixin):
    """The "text encoder": a learned lookup from one character to FLUX text tokens and a pooled vector.

    Index `len(characters)` is the null prompt `""`, used as the unconditional branch of classifier-free guidance.
    """

    @register_to_config
    def __init__(
        self,
        characters: str = CHARACTERS,
        num_tokens: int = 4,
        joint_attention_dim: int = 128,
        pooled_projection_dim: int = 128,
    ):
        super().__init__()
        self.token_embedding = nn.Embedding(len(characters) + 1, num_tokens * joint_attention_dim)
        self.pooled_embedding = nn.Embedding(len(characters) + 1, pooled_projection_dim)

    @property
    def null_id(self) -> int:
        """Index of the empty (unconditional) prompt."""
        return len(self.config.characters)

    def tokenize(self, prompts: str | list[str]) -> torch.LongTensor:
        """Map prompts (one character each, surrounding whitespace ignored; `""` is the null prompt) to indices."""
        if isinstance(prompts, str):
            prompts = [prompts]
        ids = []
        for prompt in prompts:
            char = prompt.strip() if isinstance(prompt, str) else None
            if char == "":
                ids.append(self.null_id)
            elif char is not None and len(char) == 1 and char in self.config.characters:
                ids.append(self.config.characters.index(char))
            else:
                raise ValueError(
                    f"Unsupported prompt {prompt!r}: the demo model draws a single character, one of "
                    f"{self.config.characters!r} (or '' for an unconditional sample)."
                )
        return torch.tensor(ids, dtype=torch.long, device=self.device)

    def forward(self, ids: torch.LongTensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return `encoder_hidden_states` [B, num_tokens, joint_attention_dim] and `pooled_projections` [B, pooled]."""
        tokens = self.token_embedding(ids).reshape(ids.shape[0], self.config.num_tokens, -1)
        return tokens, self.pooled_embedding(ids)


class GlyphPipeline(DiffusionPipeline):
    """Pixel-space rectified-flow text-to-image pipeline: prompt = one character, output = 64x64 grayscale glyph."""

    model_cpu_offload_seq = "encoder->transformer"

    def __init__(
        self,
        transformer: FluxTransformer2DModel,
        scheduler: FlowMatchEulerDiscreteScheduler,
        encoder: GlyphEncoder,
    ):
        super().__init__()
        self.register_modules(transformer=transformer, scheduler=scheduler, encoder=encoder)

    def encode_prompt(
        self, prompt: str | list[str], do_classifier_free_guidance: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode prompts; with guidance the null prompt is prepended batch-wise (uncond first, then cond)."""
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if do_classifier_free_guidance:
            prompts = [""] * len(prompts) + prompts
        hidden, pooled = self.encoder(self.encoder.tokenize(prompts).to(self._execution_device))
        dtype = self.transformer.dtype
        return hidden.to(dtype), pooled.to(dtype)

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        num_inference_steps: int = 50,
        guidance_scale: float = 4.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable[[DiffusionPipeline, int, torch.Tensor, dict], dict] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
    ) -> ImagePipelineOutput | tuple:
        """Generate one glyph per prompt.

        Args:
            prompt: a character (or list of characters) from `encoder.config.characters`; `""` is unconditional.
            num_inference_steps: Euler steps of the flow-matching scheduler.
            guidance_scale: classifier-free guidance weight; values <= 1 disable guidance (one pass per step).
            generator: torch generator(s) for the initial noise; the result is deterministic given it.
            output_type: "pil" (mode "L" images), "np" ([B, 64, 64, 1] floats in [0, 1]) or "pt" ([B, 1, 64, 64]).
            return_dict: return an `ImagePipelineOutput` rather than a tuple.
            callback_on_step_end: called after each step as ``callback(pipe, i, t, {"latents": ...})`` as in
                diffusers' pipelines; the latents it returns replace the pipeline's.
            callback_on_step_end_tensor_inputs: the tensors passed to the callback (only ``"latents"``).
        """
        if output_type not in ("pil", "np", "pt"):
            raise ValueError(f"output_type must be 'pil', 'np' or 'pt', got {output_type!r}")
        if set(callback_on_step_end_tensor_inputs) - {"latents"}:
            raise ValueError(f"callback_on_step_end_tensor_inputs may name only 'latents', got {list(callback_on_step_end_tensor_inputs)}")
        device = self._execution_device
        dtype = self.transformer.dtype
        batch_size = 1 if isinstance(prompt, str) else len(prompt)
        do_cfg = guidance_scale > 1.0

        encoder_hidden_states, pooled_projections = self.encode_prompt(prompt, do_cfg)
        txt_ids = torch.zeros(encoder_hidden_states.shape[1], 3, device=device, dtype=dtype)
        img_ids = image_ids(device, dtype)

        shape = (batch_size, GRID_SIZE * GRID_SIZE, PATCH_SIZE * PATCH_SIZE)
        latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)

        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps
        with self.progress_bar(total=len(timesteps)) as progress_bar:
            for index, t in enumerate(timesteps):
                model_input = torch.cat([latents, latents]) if do_cfg else latents
                timestep = t.expand(model_input.shape[0]).to(dtype)
                with self.transformer.cache_context("cond"):  # batched CFG is one context, as in FluxPipeline
                    velocity = self.transformer(
                        hidden_states=model_input,
                        encoder_hidden_states=encoder_hidden_states,
                        pooled_projections=pooled_projections,
                        timestep=timestep / 1000,
                        img_ids=img_ids,
                        txt_ids=txt_ids,
                        return_dict=False,
                    )[0]
                if do_cfg:
                    uncond, cond = velocity.chunk(2)
                    velocity = uncond + guidance_scale * (cond - uncond)
                latents = self.scheduler.step(velocity, t, latents, return_dict=False)[0]
                if callback_on_step_end is not None:
                    given = {"latents": latents} if "latents" in callback_on_step_end_tensor_inputs else {}
                    latents = callback_on_step_end(self, index, t, given).pop("latents", latents)
                progress_bar.update()

        images = (unpack_pixels(latents.float()) / 2 + 0.5).clamp(0, 1)
        self.maybe_free_model_hooks()
        if output_type != "pt":
            images = images.permute(0, 2, 3, 1).cpu().numpy()
            if output_type == "pil":
                images = self.numpy_to_pil(images)
        if not return_dict:
            return (images,)
        return ImagePipelineOutput(images=images)


# diffusers resolves a model_index.json `_class_name` only inside its own namespace, so expose the pipeline there:
# after `import tap_plugins.demo`, plain `DiffusionPipeline.from_pretrained(DEMO_MODEL_PATH)` finds GlyphPipeline.
if not hasattr(diffusers, GlyphPipeline.__name__):
    setattr(diffusers, GlyphPipeline.__name__, GlyphPipeline)
