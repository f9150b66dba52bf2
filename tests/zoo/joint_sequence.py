"""Zoo cases: see zoo/__init__.py. Single-stream models whose main layers see one joined sequence.

Configs follow each class's tests in diffusers, shrunk to 1-3 blocks per list, width <= 32 and at
most 64 image tokens; timesteps go in the convention the class's pipeline uses (several models run
time from 0 = noise to 1 = clean and predict the negated velocity). A few classes zero-initialise
their AdaLN modulation or output projection, which would make a random tiny model an identity (or
output zeros): :func:`_wake` gives every all-zero parameter small random values.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from zoo import ZooCase, first_tensor


def _randn(generator: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=generator)


def _batch(t: torch.Tensor, scale: float = 1.0, reverse: bool = False, size: int = 2) -> torch.Tensor:
    """The scheduler timestep (1000 to 0) as a batch-sized 1-d tensor, divided by ``scale``; ``reverse``
    gives ``1 - t / scale`` for models whose time runs from 0 (noise) to 1 (clean)."""
    value = t.float() / scale
    return (1.0 - value if reverse else value).expand(size).clone()


def _wake(model: torch.nn.Module, std: float = 0.05) -> torch.nn.Module:
    """Small random values for every all-zero parameter (zero-initialised gates, modulations, heads)."""
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.numel() and not parameter.any():
                parameter.normal_(0.0, std)
    return model


def _negated(output, latents):
    return -first_tensor(output)


# -- Z-Image -----------------------------------------------------------------------------------------
def _z_image_build():
    from diffusers import ZImageTransformer2DModel

    return _wake(ZImageTransformer2DModel(
        all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=32, n_layers=2, n_refiner_layers=1,
        n_heads=2, n_kv_heads=2, qk_norm=True, cap_feat_dim=16, rope_theta=256.0, t_scale=1000.0,
        axes_dims=[8, 4, 4], axes_lens=[256, 32, 32],
    ))


def _z_image_inputs(g):
    # captions of different lengths: the unified [image; caption] sequence carries pad tokens
    return {"latents": _randn(g, 2, 16, 1, 16, 16), "cap_feats": [_randn(g, 16, 16), _randn(g, 10, 16)]}


def _z_image_velocity(output, latents):
    return -torch.stack(list(output[0]))  # Z-Image returns ([sample, ...],)


# -- Lumina2 -----------------------------------------------------------------------------------------
def _lumina2_build():
    from diffusers import Lumina2Transformer2DModel

    return _wake(Lumina2Transformer2DModel(
        sample_size=16, patch_size=2, in_channels=4, hidden_size=24, num_layers=2, num_refiner_layers=1,
        num_attention_heads=3, num_kv_heads=1, multiple_of=2, ffn_dim_multiplier=None, norm_eps=1e-5,
        scaling_factor=1.0, axes_dim_rope=(4, 2, 2), axes_lens=(128, 128, 128), cap_feat_dim=32,
    ))


def _lumina2_inputs(g):
    mask = torch.ones(2, 16, dtype=torch.bool)
    mask[1, 12:] = False  # the second caption is shorter: the joined sequences differ in length
    return {"latents": _randn(g, 2, 4, 16, 16), "encoder_hidden_states": _randn(g, 2, 16, 32), "encoder_attention_mask": mask}


# -- OmniGen -----------------------------------------------------------------------------------------
def _omnigen_build():
    from diffusers import OmniGenTransformer2DModel

    return _wake(OmniGenTransformer2DModel(
        hidden_size=16, num_attention_heads=4, num_key_value_heads=4, intermediate_size=32, num_layers=2,
        pad_token_id=0, vocab_size=1000, in_channels=4, time_step_dim=4,
        rope_scaling={"long_factor": list(range(1, 3)), "short_factor": list(range(1, 3))},
    ))


def _omnigen_inputs(g):
    length = 24 + 1 + 16  # condition tokens, the time token, 16 image tokens
    return {
        "latents": _randn(g, 2, 4, 8, 8),
        "input_ids": torch.randint(0, 10, (2, 24), generator=g),
        "input_img_latents": [_randn(g, 1, 4, 8, 8)],
        "input_image_sizes": {0: [[0, 16]]},
        "attention_mask": torch.ones(2, length, length),
        "position_ids": torch.arange(length).repeat(2, 1),
    }


# -- Ideogram 4 --------------------------------------------------------------------------------------
_IDEOGRAM_TEXT = 4


def _ideogram4_build():
    from diffusers import Ideogram4Transformer2DModel

    return _wake(Ideogram4Transformer2DModel(
        in_channels=16, num_layers=2, attention_head_dim=8, num_attention_heads=4, intermediate_size=32,
        adaln_dim=16, llm_features_dim=24, rope_theta=10_000, mrope_section=(2, 1, 1), norm_eps=1e-5,
    ))


def _ideogram4_inputs(g):
    from diffusers.models.transformers.transformer_ideogram4 import (
        IMAGE_POSITION_OFFSET, LLM_TOKEN_INDICATOR, OUTPUT_IMAGE_INDICATOR,
    )

    text, image, side = _IDEOGRAM_TEXT, 16, 4
    features = torch.zeros(2, text + image, 24)
    features[:, :text] = _randn(g, 2, text, 24)
    position_ids = torch.zeros(2, text + image, 3, dtype=torch.long)
    position_ids[:, :text] = torch.arange(text)[:, None]
    position_ids[:, text:, 0] = IMAGE_POSITION_OFFSET
    position_ids[:, text:, 1] = torch.arange(side).repeat_interleave(side) + IMAGE_POSITION_OFFSET
    position_ids[:, text:, 2] = torch.arange(side).repeat(side) + IMAGE_POSITION_OFFSET
    indicator = torch.full((2, text + image), OUTPUT_IMAGE_INDICATOR, dtype=torch.long)
    indicator[:, :text] = LLM_TOKEN_INDICATOR
    return {
        "latents": _randn(g, 2, image, 16),
        "encoder_hidden_states": features,
        "position_ids": position_ids,
        "segment_ids": torch.ones(2, text + image, dtype=torch.long),
        "indicator": indicator,
    }


def _ideogram4_call(inputs, latents, t):
    packed = torch.cat([latents.new_zeros(latents.shape[0], _IDEOGRAM_TEXT, latents.shape[2]), latents], dim=1)
    return dict(
        hidden_states=packed, timestep=_batch(t, 1000.0, reverse=True), encoder_hidden_states=inputs["encoder_hidden_states"],
        position_ids=inputs["position_ids"], segment_ids=inputs["segment_ids"], indicator=inputs["indicator"],
    )


# -- Krea 2 ------------------------------------------------------------------------------------------
def _krea2_build():
    from diffusers import Krea2Transformer2DModel

    return _wake(Krea2Transformer2DModel(
        in_channels=16, num_layers=2, attention_head_dim=8, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=32, timestep_embed_dim=8, text_hidden_dim=16, num_text_layers=3,
        text_num_attention_heads=2, text_num_key_value_heads=1, text_intermediate_size=16,
        num_layerwise_text_blocks=1, num_refiner_text_blocks=1, axes_dims_rope=(4, 2, 2), rope_theta=1000.0,
        norm_eps=1e-5,
    ))


def _krea2_inputs(g):
    text, side = 4, 4
    position_ids = torch.zeros(text + side * side, 3)
    position_ids[text:, 1] = torch.arange(side).repeat_interleave(side)
    position_ids[text:, 2] = torch.arange(side).repeat(side)
    mask = torch.ones(2, text, dtype=torch.bool)
    mask[1, -1] = False
    return {
        "latents": _randn(g, 2, side * side, 16), "encoder_hidden_states": _randn(g, 2, text, 3, 16),
        "position_ids": position_ids, "encoder_attention_mask": mask,
    }


# -- MiniMax-H3 --------------------------------------------------------------------------------------
_H3_TEXT, _H3_AUDIO, _H3_VIDEO = 4, 6, 8


def _minimax_h3_build():
    from diffusers import MiniMaxH3Transformer3DModel

    return _wake(MiniMaxH3Transformer3DModel(
        num_attention_heads=2, attention_head_dim=16, hidden_size=24, num_layers=2, num_refiner_layers=1, ffn_dim=32,
        in_channels=4, audio_in_channels=6, patch_size=(1, 2, 2), text_dim=8, freq_dim=8, time_embed_hidden_dim=24,
        time_embed_dim=16, rope_freq_dim=2,
    ))


def _minimax_h3_inputs(g):
    length = _H3_TEXT + _H3_AUDIO + _H3_VIDEO
    text = torch.arange(_H3_TEXT)
    audio = torch.arange(_H3_TEXT, _H3_TEXT + _H3_AUDIO)
    video = torch.arange(_H3_TEXT + _H3_AUDIO, length)
    tags = torch.empty(length, dtype=torch.long)
    tags[text], tags[audio], tags[video] = 1, 2, 0
    timestep_indices = torch.zeros(length, dtype=torch.long)
    timestep_indices[audio] = 1
    position_ids = torch.zeros(length, 3)
    position_ids[:, 0] = torch.arange(length, dtype=torch.float32)
    position_ids[video, 1] = torch.arange(_H3_VIDEO, dtype=torch.float32) % 4
    position_ids[video, 2] = torch.arange(_H3_VIDEO, dtype=torch.float32) % 2
    # the sampler's latents hold the video rows then the audio rows (6 channels, zero-padded to 16)
    latents = torch.cat([_randn(g, 2, _H3_VIDEO, 16), F.pad(_randn(g, 2, _H3_AUDIO, 6), (0, 10))], dim=1)
    return {
        "latents": latents, "encoder_hidden_states": _randn(g, 2, _H3_TEXT, 8), "timestep_indices": timestep_indices,
        "token_tags": tags, "position_ids": position_ids, "video_indices": video, "audio_indices": audio,
        "text_indices": text,
    }


def _minimax_h3_call(inputs, latents, t):
    s = 1.0 - t.float() / 1000.0  # MiniMax-H3 time: 0 is noise, 1 is clean; the audio rows run on their own clock
    return dict(
        hidden_states=latents[:, :_H3_VIDEO], audio_hidden_states=latents[:, _H3_VIDEO:, :6],
        encoder_hidden_states=inputs["encoder_hidden_states"], timestep=torch.stack([s, 0.5 + 0.5 * s]),
        **{k: inputs[k] for k in ("timestep_indices", "token_tags", "position_ids", "video_indices", "audio_indices", "text_indices")},
    )


def _minimax_h3_velocity(output, latents):
    video, audio = output[:2]
    return -torch.cat([video, F.pad(audio, (0, latents.shape[-1] - audio.shape[-1]))], dim=1)


# -- Bria FIBO 2 -------------------------------------------------------------------------------------
def _bria_fibo2_build():
    from diffusers import BriaFibo2Transformer2DModel

    return _wake(BriaFibo2Transformer2DModel(
        in_channels=4, patch_size=2, dim=32, n_layers=2, n_refiner_layers=1, n_heads=2, cap_feat_dim=16,
        injection_layer_ids=(1,), perceiver_num_layers=1, min_num_gist_tokens=4, max_num_gist_tokens=8, gist_step=4,
        gist_min_text_len=4, gist_max_text_len=16, axes_dims=(4, 6, 6), axes_lens=(64, 32, 32),
    ))


def _bria_fibo2_inputs(g):
    mask = torch.ones(2, 16, dtype=torch.bool)
    mask[1, 4:] = False  # 8 and 4 gist tokens: the padded layout [image; gist]
    return {"latents": _randn(g, 2, 4, 16, 16), "encoder_hidden_states": _randn(g, 2, 2, 16, 16), "encoder_attention_mask": mask}


# -- Qwen-Image 2.1 ----------------------------------------------------------------------------------
_QWEN21_LAYERS, _QWEN21_TEXT = 2, 8


def _qwenimage21_build():
    from diffusers import QwenImage21Transformer2DModel

    return _wake(QwenImage21Transformer2DModel(
        patch_size=1, in_channels=16, out_channels=16, num_layers=_QWEN21_LAYERS, attention_head_dim=16,
        num_attention_heads=2, context_in_dim=16, mlp_ratio=3, axes_dims_rope=(4, 6, 6), causal_condition=True,
    ))


def _qwenimage21_inputs(g):
    from diffusers.models.transformers.transformer_qwenimage21 import QwenImage21KVCache

    target = 8 * 8
    img_mask = torch.zeros(2, _QWEN21_TEXT + target // 4, dtype=torch.bool)
    img_mask[:, _QWEN21_TEXT:] = True  # the target image's slots, each a 2x2 group of latent tokens
    return {
        "latents": _randn(g, 2, target, 16), "encoder_hidden_states": _randn(g, 2, _QWEN21_TEXT, 16),
        "img_mask": img_mask, "img_shapes": [[(1, 8, 8)]] * 2,
        # the pipeline's default: the first step prefills the text keys and values, later steps decode from them
        "kv_cache": QwenImage21KVCache(_QWEN21_LAYERS), "loop": {"step": 0},
    }


def _qwenimage21_call(inputs, latents, t):
    mode = "extract" if inputs["loop"]["step"] == 0 else "cached"
    inputs["loop"]["step"] += 1
    return dict(
        hidden_states=latents, encoder_hidden_states=inputs["encoder_hidden_states"], timestep=_batch(t, 1000.0),
        img_shapes=inputs["img_shapes"], img_mask=inputs["img_mask"], kv_cache=inputs["kv_cache"], kv_cache_mode=mode,
    )


def _qwenimage21_velocity(output, latents):
    return first_tensor(output)[:, -latents.shape[1]:]


# -- ERNIE-Image -------------------------------------------------------------------------------------
def _ernie_image_build():
    from diffusers import ErnieImageTransformer2DModel

    return _wake(ErnieImageTransformer2DModel(
        hidden_size=32, num_attention_heads=2, num_layers=2, ffn_hidden_size=32, in_channels=16, out_channels=16,
        patch_size=1, text_in_dim=16, rope_theta=256, rope_axes_dim=(8, 4, 4), eps=1e-6, qk_layernorm=True,
    ))


def _ernie_image_inputs(g):
    return {"latents": _randn(g, 2, 16, 8, 8), "text_bth": _randn(g, 2, 16, 16), "text_lens": torch.tensor([16, 10])}


# -- PRX ---------------------------------------------------------------------------------------------
def _prx_build():
    from diffusers import PRXTransformer2DModel

    return _wake(PRXTransformer2DModel(
        in_channels=16, patch_size=2, context_in_dim=16, hidden_size=32, mlp_ratio=3.5, num_heads=2, depth=2,
        axes_dim=[8, 8], theta=10_000,
    ))


def _prx_inputs(g):
    mask = torch.ones(2, 8, dtype=torch.bool)
    mask[1, 6:] = False
    return {"latents": _randn(g, 2, 16, 16, 16), "encoder_hidden_states": _randn(g, 2, 8, 16), "attention_mask": mask}


# -- NucleusMoE-Image --------------------------------------------------------------------------------
def _nucleusmoe_build():
    from diffusers import NucleusMoEImageTransformer2DModel

    return _wake(NucleusMoEImageTransformer2DModel(
        patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=16, axes_dims_rope=(8, 4, 4), moe_enabled=False, capacity_factors=[8.0, 8.0],
    ))


def _nucleusmoe_inputs(g):
    mask = torch.ones(2, 8, dtype=torch.long)
    mask[1, 6:] = 0
    return {
        "latents": _randn(g, 2, 64, 16), "encoder_hidden_states": _randn(g, 2, 8, 16),
        "encoder_hidden_states_mask": mask, "img_shapes": [(1, 8, 8)] * 2,
    }


CASES = [
    ZooCase(
        "ZImageTransformer2DModel", _z_image_build, _z_image_inputs,
        lambda i, x, t: dict(x=list(x.unbind(0)), t=_batch(t, 1000.0, reverse=True), cap_feats=i["cap_feats"]),
        velocity=_z_image_velocity,
    ),
    ZooCase(
        "Lumina2Transformer2DModel", _lumina2_build, _lumina2_inputs,
        lambda i, x, t: dict(
            hidden_states=x, timestep=_batch(t, 1000.0, reverse=True), encoder_hidden_states=i["encoder_hidden_states"],
            encoder_attention_mask=i["encoder_attention_mask"],
        ),
        velocity=_negated,
    ),
    ZooCase(
        "OmniGenTransformer2DModel", _omnigen_build, _omnigen_inputs,
        lambda i, x, t: dict(hidden_states=x, timestep=_batch(t), **{k: v for k, v in i.items() if k != "latents"}),
    ),
    ZooCase(
        "Ideogram4Transformer2DModel", _ideogram4_build, _ideogram4_inputs, _ideogram4_call,
        velocity=lambda output, latents: -first_tensor(output)[:, _IDEOGRAM_TEXT:],
    ),
    ZooCase(
        "Krea2Transformer2DModel", _krea2_build, _krea2_inputs,
        lambda i, x, t: dict(hidden_states=x, timestep=_batch(t, 1000.0), **{k: v for k, v in i.items() if k != "latents"}),
    ),
    ZooCase(
        "MiniMaxH3Transformer3DModel", _minimax_h3_build, _minimax_h3_inputs, _minimax_h3_call,
        velocity=_minimax_h3_velocity,
    ),
    ZooCase(
        "BriaFibo2Transformer2DModel", _bria_fibo2_build, _bria_fibo2_inputs,
        lambda i, x, t: dict(hidden_states=x, timestep=_batch(t, 1000.0), **{k: v for k, v in i.items() if k != "latents"}),
    ),
    ZooCase(
        "QwenImage21Transformer2DModel", _qwenimage21_build, _qwenimage21_inputs, _qwenimage21_call,
        velocity=_qwenimage21_velocity,
    ),
    ZooCase(
        "ErnieImageTransformer2DModel", _ernie_image_build, _ernie_image_inputs,
        lambda i, x, t: dict(hidden_states=x, timestep=_batch(t), text_bth=i["text_bth"], text_lens=i["text_lens"]),
    ),
    ZooCase(
        "PRXTransformer2DModel", _prx_build, _prx_inputs,
        lambda i, x, t: dict(hidden_states=x, timestep=_batch(t, 1000.0), **{k: v for k, v in i.items() if k != "latents"}),
    ),
    ZooCase(
        "NucleusMoEImageTransformer2DModel", _nucleusmoe_build, _nucleusmoe_inputs,
        lambda i, x, t: dict(hidden_states=x, timestep=_batch(t, 1000.0), **{k: v for k, v in i.items() if k != "latents"}),
        velocity=_negated,
    ),
]
