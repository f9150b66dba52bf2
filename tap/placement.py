"""Refining a placement of full steps by measurement: move each full step while a measured score rises.

Used by ``tap plan`` (``refine``), ``tap tune``'s placement stage and the placement studies in contrib/benchmarks. The number
of full steps never changes, so neither does the speed; only where they sit does. What it finds is
specific to the samples it scores (docs/research.md, section 13).
"""

from __future__ import annotations

from typing import Any, Callable

MOVES = (-2, -1, 1, 2)  # how far each full step is tried to be moved


def refine_placement(steps: list[int], score: Callable[[list[int]], Any], *, num_steps: int, warmup: int, sweeps: int,
                     moves: tuple[int, ...] = MOVES) -> tuple[list[int], Any]:
    """Coordinate descent: for up to ``sweeps`` passes, move each full step after the first ``warmup`` by each of
    ``moves`` (keeping the steps in order and inside ``num_steps``) and keep any move that raises ``score``
    (higher is better); stop early after a pass without a gain. Returns the best steps and their score."""
    best, best_score = list(steps), score(list(steps))
    for _ in range(sweeps):
        start = best
        for index in range(warmup, len(best)):
            origin = best
            lower = origin[index - 1] if index else -1
            upper = origin[index + 1] if index + 1 < len(origin) else num_steps
            for move in moves:
                moved = origin[index] + move
                if not lower < moved < upper:
                    continue
                candidate = [*origin[:index], moved, *origin[index + 1 :]]
                candidate_score = score(candidate)
                if candidate_score > best_score:
                    best, best_score = candidate, candidate_score
        if best is start:
            break
    return best, best_score
