"""Quality against the full-compute reference: PSNR (tap.psnr's) and SSIM (scikit-image's), averaged over a video's frames."""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

from tap.psnr import capped_psnr


def as_frames(media) -> np.ndarray:
    """float64 [frames, H, W, C] in [0, 1]: a video ([F, H, W, C] array or list of frames) as it is, an image
    (PIL image or [H, W(, C)] array) as one frame."""
    raw = np.asarray(media)
    array = raw / 255.0 if np.issubdtype(raw.dtype, np.integer) else raw.astype(np.float64)
    if array.ndim == 4:
        return array
    return (array[..., None] if array.ndim == 2 else array)[None]


def psnr(reference, media) -> float:
    """Peak signal-to-noise ratio in dB, the mean over frames of each frame's (capped at tap.psnr.PSNR_CAP); inf when identical."""
    reference, media = as_frames(reference), as_frames(media)
    if np.array_equal(reference, media):
        return float("inf")
    return float(np.mean([capped_psnr(r, m, data_range=1.0) for r, m in zip(reference, media, strict=True)]))


def ssim(reference, media) -> float:
    """Structural similarity (scikit-image's 7x7 window), the mean over frames."""
    reference, media = as_frames(reference), as_frames(media)
    return float(np.mean([
        structural_similarity(r, m, data_range=1.0, channel_axis=-1) for r, m in zip(reference, media, strict=True)
    ]))
