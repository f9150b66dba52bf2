"""ODE and spectral forecasters: foca (Forecast then Calibrate), dmd (Prony / DMD), spectrum (Chebyshev ridge).

foca and spectrum are linear in the cached values (weights over them, the runtime's fast path);
dmd is not (its exponential rates are fitted from the values), so the runtime materialises its
prediction, which costs more per predicted step (see its docstring).
"""

from __future__ import annotations

import math

import attrs
import torch

from tap import LinearPredictor, Predictor, hookimpl
from tap.predictor import compute_dtype
from tap_plugins.predictors import Taylor

# Relative tolerance under which two gaps between cached steps count as equal.
_SPACING_TOLERANCE = 1e-9
# dmd falls back to taylor(order=1) when its forecast is this many times larger than the largest
# cached snapshot: an exploding fitted mode is far likelier an ill-posed fit than real dynamics.
_MAX_GROWTH = 100.0
# Feature elements per chunk of dmd's tall-skinny QR (64k: cache-friendly, a few MiB per chunk).
_QR_CHUNK = 1 << 16


def _taylor_fallback(available: int) -> Predictor | None:
    """taylor(order=1) (reuse with a single cached step), or None with none."""
    return Taylor(order=min(1, available - 1)) if available >= 1 else None


@attrs.frozen
class Foca(LinearPredictor):
    """FoCa, Forecast then Calibrate (Zheng et al., arXiv 2508.16211): feature caching as an ODE.

    The cached feature F(s) is read as the solution of dF/ds = g(F, s); a skipped step is one step
    of a predictor-corrector integrator from the last full step. With the last three full steps
    s0 < s1 < s2 (values F0, F1, F2), gaps h0 = s1 - s0, h1 = s2 - s1 and k = target - s2:

    - anchor derivative, variable-step BDF2 at s2 (the derivative at s2 of the quadratic through
      the three points): g2 = D1 + h1 * D2, with D1 = (F2 - F1) / h1, D0 = (F1 - F0) / h0 and
      D2 = (D1 - D0) / (h0 + h1); on a uniform grid g2 = (3 F2 - 4 F1 + F0) / (2 h);
    - forecast: F~ = F2 + k * g2;
    - derivative at the forecast, BDF2 at the target (the derivative at ``target`` of the
      quadratic through (s1, F1), (s2, F2), (target, F~)): g~ = g2 + k * (g2 - D1) / (k + h1);
    - calibrate, Heun's trapezoidal rule from the anchor: F = F2 + k / 2 * (g2 + g~),
      that is F = F2 + k D1 + h1 D2 * (k + k^2 / (2 (k + h1))).

    Every term uses the real gaps, so unevenly spaced full steps are handled exactly. The
    curvature term grows linearly in k where a quadratic extrapolation (taylor order 2, whose term
    is k (k + h1) D2) grows quadratically: that damping is what keeps long skips stable. The
    result is exact for polynomials of degree <= 1 (D2 = 0 there), not 2.

    cache-dit 1.5.3 ships FoCa as a stateful calibrator for uniform steps h = 1 that feeds its own
    predictions back in (F_bdf2 = 2 F_k - F_km1, Heun F_full + elapsed / 2 * (deriv_full +
    deriv_curr)); tap predictors see only full steps, so this is the same forecast-then-calibrate
    pair written in closed form over the cached steps. ``max_horizon`` is cache-dit's optional
    damping: beyond that many steps past s2 the forecast at max_horizon is blended toward F2 with
    weight max_horizon / k (cache-dit uses 3); None (the default) leaves it off. With it on, only
    constants are reproduced exactly.

    Memory: three cached residual tensors per cached step window (``history`` = 3).
    """

    name = "foca"
    max_horizon: float | None = attrs.field(
        default=None, converter=attrs.converters.optional(float), validator=attrs.validators.optional(attrs.validators.gt(0.0))
    )

    @property
    def history(self) -> int:
        return 3

    @property
    def exact_degree(self) -> int:
        return 1 if self.max_horizon is None else 0

    def degrade(self, available: int) -> Predictor | None:
        # With two steps BDF2 is BDF1 and the calibration changes nothing: linear extrapolation.
        return _taylor_fallback(available)

    def _heun(self, steps: torch.Tensor, k: float) -> torch.Tensor:
        s0, s1, s2 = (float(s) for s in steps)
        h0, h1 = s1 - s0, s2 - s1
        f0, f1, f2 = torch.eye(3, dtype=torch.float64)  # the weights of F0, F1, F2 themselves
        d1, d0 = (f2 - f1) / h1, (f1 - f0) / h0
        d2 = (d1 - d0) / (h0 + h1)
        g2 = d1 + h1 * d2
        g_forecast = g2 + k * (g2 - d1) / (k + h1)
        return f2 + k / 2.0 * (g2 + g_forecast)

    def _weights(self, steps, target):
        k = target - float(steps[-1])
        if self.max_horizon is None or k <= self.max_horizon:
            return self._heun(steps, k)
        blend = self.max_horizon / k
        anchor = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
        return blend * self._heun(steps, self.max_horizon) + (1.0 - blend) * anchor


def _uniform_tail(steps: torch.Tensor) -> tuple[int, float]:
    """Length of the longest evenly spaced suffix of ``steps`` and its spacing."""
    spacing = float(steps[-1] - steps[-2])
    length = 2
    while length < steps.numel():
        gap = float(steps[-length] - steps[-length - 1])
        if abs(gap - spacing) > _SPACING_TOLERANCE * spacing:
            break
        length += 1
    return length, spacing


def _snapshot_coordinates(flat: torch.Tensor) -> torch.Tensor:
    """R of the thin QR of the snapshot matrix X = flat^T ([D, L]): X = Q R, so column j of R holds
    snapshot j's coordinates in an orthonormal basis of their span (Q is never formed).

    A tall-skinny QR: each chunk of rows is factored in the values' own dtype (backward stable, so
    R is as accurate as the values are), the stacked small R factors once more in float64. No Gram
    matrix, so the conditioning is never squared, and the extra memory is one chunk.
    """
    rs = [torch.linalg.qr(chunk.T, mode="r").R.to(torch.float64) for chunk in flat.split(_QR_CHUNK, dim=1)]
    stacked = torch.cat(rs)
    return torch.linalg.qr(stacked, mode="r").R if len(rs) > 1 else stacked


def _square_root(matrix: torch.Tensor) -> torch.Tensor | None:
    """The principal square root by the Denman-Beavers iteration (defective matrices included), or
    None when it does not converge (an eigenvalue on the closed negative real axis)."""
    y, z = matrix, torch.eye(matrix.shape[0], dtype=matrix.dtype)
    for _ in range(100):
        y_next, z_next = (y + torch.linalg.inv(z)) / 2, (z + torch.linalg.inv(y)) / 2
        if not bool(torch.isfinite(y_next).all()):
            return None
        if float((y_next - y).norm()) <= 1e-15 * float(y_next.norm()):
            return y_next
        y, z = y_next, z_next
    return None


def _logarithm(matrix: torch.Tensor) -> torch.Tensor | None:
    """The principal logarithm by inverse scaling and squaring: square roots until A^(1/2^s) is
    within 0.05 of I, then the Mercator series of log(I + X) (error < 0.05^26), times 2^s."""
    eye = torch.eye(matrix.shape[0], dtype=matrix.dtype)
    root, halvings = matrix, 0
    while float((root - eye).norm()) > 0.05:
        root = _square_root(root) if halvings < 64 else None
        if root is None:
            return None
        halvings += 1
    x = root - eye
    term, series = eye, torch.zeros_like(eye)
    for j in range(1, 26):
        term = term @ x
        series = series + (term if j % 2 else -term) / j
    return series * 2.0**halvings


def _matrix_power(matrix: torch.Tensor, k: float) -> torch.Tensor | None:
    """matrix^k: the principal power exp(k log(matrix)) for fractional k, which is exact on
    defective matrices too (the Jordan block of a polynomial trajectory); None where the principal
    power does not exist (an eigenvalue on the closed negative real axis: no real trajectory
    sampled faster than its oscillations has one)."""
    if float(k).is_integer():
        return torch.linalg.matrix_power(matrix, int(k))
    log = _logarithm(matrix)
    return None if log is None else torch.linalg.matrix_exp(k * log)


@attrs.frozen
class DMD(Predictor):
    """Prony / DMD forecast (Dynamic Mode Decomposition, Schmid 2010; cache-dit's DMD calibrator):
    an exponential basis fitted to the last ``history`` full steps.

    Model: on evenly spaced cached steps s_j = s_0 + j h the snapshots x_j (flattened) follow a
    linear propagator, x_{j+1} = A x_j, so x_j = sum_i phi_i mu_i^j: a sum of exponentials
    exp(lambda_i s) with mu_i = exp(lambda_i h). The forecast at ``target`` is
    x(s_last + k h) = sum_i phi_i mu_i^(L-1+k) with k = (target - s_last) / h, fractional k
    included: A^k is the principal power exp(k log A) (log by inverse scaling and squaring), so
    real rates lambda_i (and oscillations slower than the Nyquist rate) are reproduced at every
    target, not only on the grid.

    Fit (exact DMD with delay embedding, SVD-regularised):

    1. Per sample (dim 1 of values [H, B, ...]; the whole tensor when values has 1 or 2 dims), the
       snapshots' coordinates r_j come from a thin QR of the snapshot matrix and an SVD of its R
       factor, truncated to the c directions above ``rcond`` times the largest (c <= min(D, L)
       is their numerical rank); everything below works on these c x L numbers, not on the
       D-long features.
    2. Delay embedding: e_j = [r_j; r_{j+1}; ...; r_{j+d-1}] (Hankel / Prony), with the depth d in
       1..L-1 that maximises the identifiable mode count min(d c, L - d): d = 1 (plain DMD) for
       wide features, d ~ L/2 (Prony's method) for scalars.
    3. E = [e_0 .. e_{m-2}] = U S V^T; singular values below ``rcond`` * S_0 are truncated (rank r);
       A~ = U_r^T E' V_r S_r^-1 is the propagator projected on the r leading directions.
    4. The newest embedded snapshot is advanced: e = U_r A~^k U_r^T e_{m-1}; its last block is the
       forecast's coordinates, mapped back to features as a least-squares combination of the
       snapshots (the orthonormal basis is never stored).

    Exactness: sums of r exponentials sum_i a_i exp(lambda_i s) (vector amplitudes a_i, distinct
    real rates) are reproduced to rounding when r <= min(d c, L - d): up to L - 1 terms for
    features with at least that many independent components, floor(L / 2) for scalars. Linear
    trajectories are a Jordan block at mu = 1, and the principal power of it continues them
    exactly too (``exact_degree`` = 1).

    Uneven spacing: exponentials sampled on an uneven grid have no closed-form Prony fit (the rates
    enter non-linearly, and no resampling is done), so the fit uses the longest evenly spaced
    suffix of the window; a fixed ``interval`` schedule gives evenly spaced full steps after its
    warm-up. When that suffix cannot identify two modes (fewer than 3 steps, or 3 whose snapshots
    are parallel, scalars included), the forecast is taylor(order=1), the line through the last
    two full steps, which is exact for the same polynomials. The same fallback answers, sample by
    sample, an all-zero window, non-finite values, a failed decomposition, a propagator with no
    principal power (an eigenvalue on the negative real axis), a non-finite forecast and one over
    100 times the largest cached snapshot (an exploding mode of an ill-posed fit). Near-identical snapshots (differences
    under ``rcond``) fall under the truncation: rank 1, a reuse-like forecast, never inf or nan.

    ``rcond`` (None by default) follows the precision the values arrive in: min(1e-3, 1000 eps),
    so 1.2e-4 for a float32 cache (cache-dit uses 1e-4), 1e-3 for bf16/fp16 and 2.2e-13 for
    float64; set it to regularise harder.

    Cost: ``history`` snapshots (default 4) are cached, one residual tensor [B, N, D] per cached
    full step in the cache dtype, like taylor with order history - 1. dmd is not linear in the
    values, so the runtime computes its prediction in full; each one reads the window twice (a
    tall-skinny QR in the values' dtype, O(L^2 D) flops, and the weighted sum) and refits, about
    3.5x taylor(order=1)'s time on CPU. Wider windows identify more modes but average over dynamics
    that drift along the trajectory, which is why cache-dit keeps them short.
    """

    name = "dmd"
    history: int = attrs.field(default=4, validator=[attrs.validators.instance_of(int), attrs.validators.ge(4), attrs.validators.le(61)])
    rcond: float | None = attrs.field(
        default=None, converter=attrs.converters.optional(float),
        validator=attrs.validators.optional([attrs.validators.gt(0.0), attrs.validators.lt(1.0)]),
    )

    @property
    def exact_degree(self) -> int:
        return 1

    def degrade(self, available: int) -> Predictor | None:
        if available >= 4:
            return attrs.evolve(self, history=available)
        return _taylor_fallback(available)

    def predict(self, steps, values, target):
        # As the base class, but the default rcond follows the precision values arrive in (a bf16
        # cache computes in float32, yet carries only bf16's digits).
        rcond = self.effective_rcond(values.dtype)
        steps, values = self._validated(steps, values)
        return self._forecast_all(steps, values.to(compute_dtype(values.dtype)), float(target), rcond)

    def effective_rcond(self, dtype: torch.dtype) -> float:
        """``rcond``, or when None min(1e-3, 1000 eps(dtype)): 2.2e-13 for float64, 1.2e-4 for float32."""
        if self.rcond is not None:
            return self.rcond
        eps = torch.finfo(dtype).eps if dtype.is_floating_point else torch.finfo(torch.float64).eps
        return min(1e-3, 1e3 * eps)

    def _predict(self, steps, values, target):
        return self._forecast_all(steps, values, target, self.effective_rcond(values.dtype))

    def _forecast_all(self, steps, values, target, rcond):
        length, spacing = _uniform_tail(steps)
        k = (target - float(steps[-1])) / spacing
        tail = values[-length:]
        if values.ndim < 3:
            single = self._forecast(tail.reshape(length, -1), k, rcond)
            return single.reshape(values.shape[1:]) if single is not None else Taylor(order=1).predict(steps, values, target)
        predicted = []
        for b in range(values.shape[1]):  # each sample alone: one prompt's fit never sways another's
            forecast = self._forecast(tail[:, b].reshape(length, -1), k, rcond)
            if forecast is None:
                forecast = Taylor(order=1).predict(steps, values[:, b], target)
            predicted.append(forecast.reshape(values.shape[2:]))
        return torch.stack(predicted)

    def _forecast(self, flat: torch.Tensor, k: float, rcond: float) -> torch.Tensor | None:
        """The forecast of one sample's snapshots [L, D] k spacings past the last, or None to fall back."""
        weights = self._fit(flat, k, rcond)
        if weights is None:
            return None
        predicted = torch.tensordot(weights.to(flat.dtype), flat, dims=1)
        # One reduction instead of an elementwise test: inf and nan survive a sum (an overflowing
        # sum of finite values only costs a needless fallback).
        return predicted if bool(torch.isfinite(predicted.sum())) else None

    def _fit(self, flat: torch.Tensor, k: float, rcond: float) -> torch.Tensor | None:
        """Weights [L] (float64) over the snapshots whose combination is the DMD forecast, or None."""
        length = flat.shape[0]
        try:  # non-finite values give non-finite singular values below, hence the fallback
            _, sigma, zh = torch.linalg.svd(_snapshot_coordinates(flat), full_matrices=False)
            if not bool(sigma[0] > 0) or not bool(torch.isfinite(sigma).all()):
                return None
            c = int((sigma > rcond * sigma[0]).sum())  # the snapshots' numerical rank
            coords = sigma[:c, None] * zh[:c]  # [c, L]: coordinates in the span's c leading directions
            depth = max(range(1, length), key=lambda d: (min(d * c, length - d), -d))
            if min(depth * c, length - depth) < 2:
                return None
            m = length - depth + 1
            embedded = torch.stack([coords[:, j : j + depth].T.reshape(-1) for j in range(m)], dim=1)  # [d c, m]
            before, after = embedded[:, :-1], embedded[:, 1:]
            u, s, vh = torch.linalg.svd(before, full_matrices=False)
            if not bool(s[0] > 0) or not bool(torch.isfinite(s).all()):
                return None
            rank = int((s > rcond * s[0]).sum())
            u, s, v = u[:, :rank], s[:rank], vh[:rank].T
            propagator = (u.T @ after @ v) / s  # A~ = U_r^T E' V_r S_r^-1
            power = _matrix_power(propagator, k)
            if power is None:
                return None
            advanced = u @ (power @ (u.T @ embedded[:, -1]))
            target = advanced[-c:]
            if not bool(torch.isfinite(target).all()):
                return None
            if float(target.norm()) > _MAX_GROWTH * float(coords.norm(dim=0).max()):
                return None
            weights = torch.linalg.lstsq(coords, target[:, None], rcond=None, driver="gelsd").solution[:, 0]
        except (RuntimeError, ValueError, ArithmeticError, torch.linalg.LinAlgError):
            return None
        return weights if bool(torch.isfinite(weights).all()) else None


def chebyshev(x: torch.Tensor, degree: int) -> torch.Tensor:
    """T_0(x) .. T_degree(x) of the first kind, [*x.shape, degree + 1], by T_{i+1} = 2x T_i - T_{i-1}
    (valid past [-1, 1] too, where the forecast target lies)."""
    terms = [torch.ones_like(x), x]
    for _ in range(1, degree):
        terms.append(2.0 * x * terms[-1] - terms[-2])
    return torch.stack(terms[: degree + 1], dim=-1)


def _history_at_least_degree(instance, attribute, value):
    if value < instance.degree + 1:
        raise ValueError(f"history must be at least degree + 1 = {instance.degree + 1}, got {value}")


@attrs.frozen
class Spectrum(LinearPredictor):
    """Spectrum (arXiv 2603.01623, CVPR 2026): a Chebyshev ridge regression over the cached window.

    The last ``history`` full steps s_0 < ... < s_{H-1} are mapped to x = 2 (s - s_0) /
    (s_{H-1} - s_0) - 1 in [-1, 1] (their real positions: uneven spacing is handled as is). With
    B[j, i] = T_i(x_j) the Chebyshev polynomials of the first kind up to ``degree`` and
    P = ridge * diag(0, 1, ..., 1), the coefficients are a = (B^T B + P)^-1 B^T F and the forecast
    is T(x_target) . a, that is the weights w = T(x_target) (B^T B + P)^-1 B^T over the cached
    values (solved as the stacked least-squares problem [B; sqrt(P)] a = [F; 0], never through the
    squared normal matrix).

    The constant T_0 is not penalised, as a ridge intercept usually is not, so constants are
    always reproduced exactly; with ``ridge`` = 0 and history >= degree + 1 it is the
    least-squares polynomial of that degree, exact for every polynomial of degree <= ``degree``
    (at history = degree + 1 the interpolating one, taylor's). ``exact_degree`` is therefore
    ``degree`` when ridge is 0 and 0 otherwise.

    Memory: ``history`` cached residual tensors per cached step window; a prediction is one
    weighted sum of them, as for taylor.
    """

    name = "spectrum"
    degree: int = attrs.field(default=2, validator=[attrs.validators.instance_of(int), attrs.validators.ge(0), attrs.validators.le(8)])
    history: int = attrs.field(
        default=4, validator=[attrs.validators.instance_of(int), attrs.validators.le(61), _history_at_least_degree]
    )
    ridge: float = attrs.field(default=1e-3, converter=float, validator=attrs.validators.ge(0.0))

    @property
    def exact_degree(self) -> int:
        return self.degree if self.ridge == 0.0 else 0

    def degrade(self, available: int) -> Predictor | None:
        if available < 1:
            return None
        return attrs.evolve(self, degree=min(self.degree, available - 1), history=available)

    def _weights(self, steps, target):
        count = steps.numel()
        width = float(steps[-1] - steps[0])
        if count == 1:
            return torch.ones(1, dtype=torch.float64)
        x = 2.0 * (steps - steps[0]) / width - 1.0
        x_target = torch.tensor(2.0 * (target - float(steps[0])) / width - 1.0, dtype=torch.float64)
        basis = chebyshev(x, self.degree)  # [H, degree + 1]
        penalty = torch.full((self.degree + 1,), math.sqrt(self.ridge), dtype=torch.float64)
        penalty[0] = 0.0
        system = torch.cat([basis, torch.diag(penalty)])
        rhs = torch.cat([torch.eye(count, dtype=torch.float64), torch.zeros(self.degree + 1, count, dtype=torch.float64)])
        coefficients = torch.linalg.lstsq(system, rhs, driver="gelsd").solution  # [degree + 1, H]
        return chebyshev(x_target, self.degree) @ coefficients


@hookimpl
def register_predictors(register):
    for cls in (Foca, DMD, Spectrum):
        register(cls)
