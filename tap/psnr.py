"""Peak signal-to-noise ratio: the one closeness measure that ``tap.plan`` and the tools share (numpy only)."""

from __future__ import annotations

import numpy as np

PSNR_CAP = 100.0  # identical arrays have infinite PSNR; averages use this cap instead


def capped_psnr(reference: np.ndarray, output: np.ndarray, data_range: float) -> float:
    """10 log10(data_range^2 / MSE) in dB, at most PSNR_CAP (PSNR_CAP when the arrays are equal)."""
    error = float(np.mean((np.asarray(reference, dtype=np.float64) - np.asarray(output, dtype=np.float64)) ** 2))
    return PSNR_CAP if error == 0 else min(float(10 * np.log10(data_range**2 / error)), PSNR_CAP)
