"""Built-in proxy losses: cosine (the paper's), squared L2, and cosine of the change since the last full step.

Each also has a Gram form (see :class:`tap.GramStats`) so linear candidates are scored from
inner products alone.
"""

from tap import Distance, hookimpl

EPS = 1e-12


def _cosine_distance(dot, norm_sq_a, norm_sq_b):
    return 1.0 - dot / (norm_sq_a.clamp_min(EPS) * norm_sq_b.clamp_min(EPS)).sqrt()


class Cosine(Distance):
    """1 - cos(predicted h, probed h) per token."""

    name = "cosine"

    def __call__(self, predicted, probe, last):
        dot = (predicted * probe).sum(-1)
        return _cosine_distance(dot, predicted.square().sum(-1), probe.square().sum(-1))

    def from_gram(self, weights, stats):
        return _cosine_distance(stats.dot(weights), stats.norm_sq(weights), stats.sq)


class SquaredL2(Distance):
    """||predicted h - probed h||^2 per token."""

    name = "l2"

    def __call__(self, predicted, probe, last):
        return (predicted - probe).square().sum(-1)

    def from_gram(self, weights, stats):
        return (stats.norm_sq(weights) - 2.0 * stats.dot(weights) + stats.sq).clamp_min(0.0)


class ChangeCosine(Distance):
    """1 - cos(predicted change, probed change), both measured from the last full step's h.

    The static part of h, which dominates plain cosine, cancels; a candidate that predicts no
    change (reuse) scores 1.
    """

    name = "change"

    def __call__(self, predicted, probe, last):
        predicted_change, probed_change = predicted - last, probe - last
        dot = (predicted_change * probed_change).sum(-1)
        return _cosine_distance(dot, predicted_change.square().sum(-1), probed_change.square().sum(-1))

    def from_gram(self, weights, stats):
        # Writing the change as weights minus e_last turns every term into a Gram-form expression.
        shifted = weights.clone()
        shifted[:, -1] -= 1.0
        gram_last = stats.gram[:, -1]  # <h_j, h_last> [H, B, N]
        dot = stats.dot(shifted) - stats.combine(shifted, gram_last)
        probed_sq = stats.sq - 2.0 * stats.cross[-1] + stats.gram[-1, -1]
        return _cosine_distance(dot, stats.norm_sq(shifted), probed_sq.clamp_min(0.0))


@hookimpl
def register_distances(register):
    for cls in (Cosine, SquaredL2, ChangeCosine):
        register(cls)
