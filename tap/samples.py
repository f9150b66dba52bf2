"""Per-sample decisions in a batch: a probe-driven schedule decides for each sample as if it were alone.

A probe-driven schedule reads a mean over tokens; over a whole batch, one prompt's image would
then depend on what else is in its batch. Rows whose latents are equal are one sample under
several conditionings (batched classifier-free guidance holds a cond and an uncond copy of the
same latents), so they form one group and decide together. With several groups the transformer
is called once per group, each with its own state: the full stack runs only for the samples that
need it, at the cost of smaller batches.
"""

from __future__ import annotations

from typing import Any

import torch


def sample_groups(latents: torch.Tensor) -> list[torch.Tensor]:
    """Row indices grouped by equal latents, groups in order of their first row (one host sync)."""
    _, labels = torch.unique(latents.reshape(latents.shape[0], -1), dim=0, return_inverse=True)
    groups: dict[int, list[int]] = {}
    for row, label in enumerate(labels.tolist()):
        groups.setdefault(label, []).append(row)
    return [torch.tensor(rows, device=latents.device) for rows in groups.values()]


def split_call(
    args: tuple, kwargs: dict, rows: torch.Tensor, batch: int, shared: tuple[str, ...], batch_dims: dict[str, int] | None = None
) -> tuple[tuple, dict]:
    """A transformer call's arguments for ``rows`` only: every tensor whose first dimension is the batch
    is sliced, and so is a list with one entry per row or of such tensors, except the keyword
    arguments in ``shared`` (positions or ids common to all rows). ``batch_dims`` names keyword
    arguments whose batch is another dimension than the first (HiDream's per-layer Llama states)."""
    batch_dims = batch_dims or {}

    def take(value):
        if isinstance(value, torch.Tensor) and value.ndim and value.shape[0] == batch:
            return value.index_select(0, rows)
        if isinstance(value, (list, tuple)) and value:
            if any(isinstance(item, (torch.Tensor, list, tuple)) and len(item) == batch for item in value):
                return type(value)(take(item) for item in value)  # a list of batched inputs (ControlNet residuals)
            if len(value) == batch:
                return type(value)(value[row] for row in rows.tolist())  # one entry per row (image shapes)
        return value

    def keyword(key, value):
        if key in shared:
            return value
        if key in batch_dims and isinstance(value, torch.Tensor):
            return value.index_select(batch_dims[key], rows)
        return take(value)

    return tuple(take(value) for value in args), {key: keyword(key, value) for key, value in kwargs.items()}


def merge_outputs(outputs: list[Any], order: torch.Tensor) -> Any:
    """The groups' outputs joined along the batch and put back in the rows' original ``order``."""
    first = outputs[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(outputs).index_select(0, order)
    if isinstance(first, tuple):
        return tuple(merge_outputs([output[i] for output in outputs], order) for i in range(len(first)))
    if isinstance(first, dict):  # diffusers' BaseOutput is an ordered dict
        return type(first)(**{key: merge_outputs([output[key] for output in outputs], order) for key in first})
    return first
