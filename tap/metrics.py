"""Image quality against the full-compute reference: PSNR and SSIM (scikit-image's implementations)."""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def as_float_image(image) -> np.ndarray:
    """An image as float64 [H, W, C] in [0, 1] from a PIL image or an [H, W(, C)] array in [0, 1]."""
    raw = np.asarray(image)
    array = raw / 255.0 if np.issubdtype(raw.dtype, np.integer) else raw.astype(np.float64)
    return array[..., None] if array.ndim == 2 else array


def psnr(reference, image) -> float:
    """Peak signal-to-noise ratio in dB (inf when identical)."""
    reference, image = as_float_image(reference), as_float_image(image)
    if np.array_equal(reference, image):
        return float("inf")
    return float(peak_signal_noise_ratio(reference, image, data_range=1.0))


def ssim(reference, image) -> float:
    """Structural similarity (Gaussian-free 7x7 window, as scikit-image defaults)."""
    reference, image = as_float_image(reference), as_float_image(image)
    return float(structural_similarity(reference, image, data_range=1.0, channel_axis=-1))
