"""Substitution models in compiled form: Q, its eigensystem, discrete-Γ rates, the packed model.

Pure Numba functions over arrays, the one implementation of the model numerics:
:class:`phylo.models.Model` calls them for its eigensystem and rates, and samplers call
:func:`packed_from_unconstrained` to turn unconstrained model parameters u into the
packed model vector of :mod:`phylo._kernels.pruning` without leaving compiled code
(one model-parameter move of an MCMC chain, one row of an importance-sampling batch).

Conventions (:mod:`phylo.models.substitution`): states A, C, G, T; exchangeabilities in
the order AC, AG, AT, CG, CT, GT; Q_ij = r_ij π_j (i ≠ j), normalised to mean rate 1.
The eigensystem comes from the symmetric matrix Π^{1/2} Q Π^{-1/2} = U diag(λ) Uᵀ
(cyclic Jacobi, :func:`symmetric_eigen_4`), V = Π^{-1/2} U, V⁻¹ = Uᵀ Π^{1/2}
(Felsenstein 2004, ch. 13).

Discrete Γ (Yang 1994, mean method, k equal-probability categories of Gamma(α, rate α)):
cut points are quantiles of Gamma(α, 1), found here by a safeguarded Halley iteration on
the regularised incomplete gamma function P(a, x) (series for x < a + 1, Legendre's
continued fraction for Q = 1 − P otherwise; Abramowitz & Stegun 6.5.29 and 6.5.31),
started from the Wilson–Hilferty cube-root normal approximation (a > 1) or from the
leading term P ≈ x^a / Γ(a + 1) (a ≤ 1) — the same quantity as Best & Roberts' (1975)
AS 91 chi-square quantile that MrBayes uses, solved to full double precision. The
category means are k [P(α + 1, c_{j+1}) − P(α + 1, c_j)]; tests check them against
SciPy's ``gammaincinv``/``gammainc`` path to 1e-12 for α in [0.05, 50].
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .pruning import MODEL_LAMBDA, MODEL_NCAT, MODEL_PI, MODEL_PINV, MODEL_Q, MODEL_RATES, MODEL_V, MODEL_VINV

#: Relative precision the incomplete-gamma series / continued fraction stop at.
_SERIES_EPS = 1e-17
#: Smallest positive double over the machine epsilon: the Lentz algorithm's "tiny".
_TINY = 1e-300
#: Iteration caps (never reached for a in [1e-3, 1e4]; guards only).
_MAX_TERMS = 100_000
_MAX_NEWTON = 200

# --- the unconstrained parametrisation of free model parameters -------------------------
#: Order of the free-parameter blocks in u, and of the ``free`` flags (as
#: phylo.marginal.priors.MODEL_PARAMETER_GROUPS).
FREE_KAPPA = 0
FREE_EXCHANGEABILITIES = 1
FREE_FREQUENCIES = 2
FREE_GAMMA_SHAPE = 3
FREE_PINV = 4
N_FREE_FLAGS = 5
#: Layout of the ``fixed`` vector: the model's values for parts that are not free.
FIXED_EXCH = 0          # exchangeabilities (6), GT = 1
FIXED_PI = 6            # frequencies (4)
FIXED_SHAPE = 10        # Γ shape α
FIXED_PINV = 11         # proportion of invariable sites
FIXED_NCAT = 12         # Γ categories k (0 = no Γ), as a float
FIXED_KAPPA_MODEL = 13  # 1 for K80/HKY85 (exchangeabilities from κ)
N_FIXED = 14
#: Layout of the ``prior`` vector (the default priors of phylo.marginal.priors).
PRIOR_KAPPA_MU = 0      # LogNormal(μ, σ) on κ
PRIOR_KAPPA_SIGMA = 1
PRIOR_EXCH_CONC = 2     # Dirichlet(c, ..., c) on the six exchangeabilities
PRIOR_FREQ_CONC = 3     # Dirichlet(c, c, c, c) on π
PRIOR_SHAPE_SHAPE = 4   # Gamma(shape, rate) on α
PRIOR_SHAPE_RATE = 5
N_PRIOR = 6

# AC AG AT CG CT GT: transitions are AG and CT
_TRANSITION = (False, True, False, False, True, False)


# --- incomplete gamma --------------------------------------------------------------------
#: From this shape on, x^a e^{-x}/Γ(a) is computed around x = a (see _log_prefactor).
_LARGE_SHAPE = 10.0


@njit(cache=True)
def _stirling_remainder(a):
    """ln Γ(a) − [(a − ½) ln a − a + ½ ln 2π] for a ≥ 10 (Stirling's series to a⁻¹³;
    truncation error < 1e-17 there)."""
    r = 1.0 / a
    r2 = r * r
    return r * (1.0 / 12.0 - r2 * (1.0 / 360.0 - r2 * (1.0 / 1260.0 - r2 * (
        1.0 / 1680.0 - r2 * (1.0 / 1188.0 - r2 * (691.0 / 360360.0 - r2 / 156.0))))))


@njit(cache=True)
def _log_prefactor(a, x):
    """log(x^a e^{-x} / Γ(a)). For large a the direct sum a ln x − x − ln Γ(a) cancels
    terms of size ~a ln a (absolute error ~1e-13 at a = 50, which the differences of P
    of the Γ-rate means amplify); written as a (ln(1 + d) − d) + ½ ln(a/2π) − R(a)
    with d = (x − a)/a and Stirling's remainder R it stays accurate to ~1e-16."""
    if a < _LARGE_SHAPE:
        return a * math.log(x) - x - math.lgamma(a)
    d = (x - a) / a
    return a * (math.log1p(d) - d) + 0.5 * math.log(a / (2.0 * math.pi)) - _stirling_remainder(a)


@njit(cache=True)
def gamma_p(a, x):
    """Regularised lower incomplete gamma P(a, x) = γ(a, x)/Γ(a), a > 0, x ≥ 0."""
    if x <= 0.0:
        return 0.0
    if x == np.inf:
        return 1.0
    if x < a + 1.0:
        # P = x^a e^{-x} / Γ(a+1) Σ_n x^n / ((a+1)...(a+n))   (A&S 6.5.29)
        term = 1.0 / a
        total = term
        ap = a
        for _ in range(_MAX_TERMS):
            ap += 1.0
            term *= x / ap
            total += term
            if term < total * _SERIES_EPS:
                break
        return total * math.exp(_log_prefactor(a, x))
    return 1.0 - gamma_q_fraction(a, x)


@njit(cache=True)
def gamma_q_fraction(a, x):
    """Q(a, x) = 1 − P(a, x) by Legendre's continued fraction (modified Lentz), x ≥ a + 1."""
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_TERMS):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < _TINY:
            d = _TINY
        c = b + an / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _SERIES_EPS * 4.0:
            break
    return math.exp(_log_prefactor(a, x)) * h


@njit(cache=True)
def _rough_normal_quantile(p):
    """z with Φ(z) ≈ p, |error| < 4.5e-4 (Abramowitz & Stegun 26.2.23): a start only."""
    q = p if p < 0.5 else 1.0 - p
    t = math.sqrt(-2.0 * math.log(q))
    z = t - (2.515517 + t * (0.802853 + t * 0.010328)) / (
        1.0 + t * (1.432788 + t * (0.189269 + t * 0.001308)))
    return -z if p < 0.5 else z


@njit(cache=True)
def gamma_p_inverse(a, p):
    """x ≥ 0 with P(a, x) = p (the p-quantile of Gamma(a, rate 1)), 0 ≤ p ≤ 1.

    Halley's iteration on f(x) = P(a, x) − p (f' = x^{a−1}e^{−x}/Γ(a), f''/f' =
    (a − 1)/x − 1) inside a bracket that every evaluation narrows; a step leaving the
    bracket is replaced by bisection (geometric once both ends are positive)."""
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return np.inf
    if a > 1.0:
        z = _rough_normal_quantile(p)
        w = 1.0 / (9.0 * a)
        c = 1.0 - w + z * math.sqrt(w)
        x = a * c * c * c
        if not x > 0.0:
            x = math.exp((math.log(p) + math.lgamma(a + 1.0)) / a)
    else:
        # P(a, x) ≈ x^a / Γ(a + 1) for small x; its inverse, capped where it fails
        x = math.exp((math.log(p) + math.lgamma(a + 1.0)) / a)
        if x > 1.0:
            x = 1.0 - math.log1p(-p)    # upper tail ≈ exponential
    lo = 0.0
    hi = np.inf
    for _ in range(_MAX_NEWTON):
        f = gamma_p(a, x) - p
        if abs(f) <= 4e-16 * p:
            # P(a, x) equals p to its own rounding (a step can only wander in the noise:
            # for small a, x moves a/ε-fold more than P does)
            return x
        if f < 0.0:
            lo = x
        else:
            hi = x
        dens = math.exp((a - 1.0) * math.log(x) - x - math.lgamma(a))
        xn = -1.0
        if dens > 0.0 and dens < np.inf:
            newton = f / dens
            corr = 0.5 * newton * ((a - 1.0) / x - 1.0)
            step = newton / (1.0 - corr) if abs(corr) < 0.5 else newton
            xn = x - step
            if abs(step) <= 4e-16 * x:
                # converged: the step is at the rounding level of P itself
                return xn if (xn > lo and xn < hi) else x
        if not (xn > lo and xn < hi):
            if hi == np.inf:
                xn = 2.0 * x + 1.0
            elif lo == 0.0:
                xn = 0.5 * hi
            else:
                xn = math.sqrt(lo * hi)
        x = xn
    return x


@njit(cache=True)
def discrete_gamma_rates_into(alpha, k, out):
    """Mean rates of ``k`` equal-probability categories of Gamma(α, rate α) into out[:k]
    (increasing, mean exactly 1 up to rounding; Yang 1994 eq. 10). k = 1 gives 1."""
    if k == 1:
        out[0] = 1.0
        return
    prev = 0.0
    for j in range(k):
        if j < k - 1:
            cut = gamma_p_inverse(alpha, (j + 1.0) / k)       # = α x_j on the rate-α scale
            upper = gamma_p(alpha + 1.0, cut)
        else:
            upper = 1.0
        out[j] = (upper - prev) * k
        prev = upper
    mean = 0.0
    for j in range(k):
        mean += out[j]
    mean /= k
    for j in range(k):
        out[j] = out[j] / mean


@njit(cache=True)
def discrete_gamma_rates(alpha, k):
    """:func:`discrete_gamma_rates_into` into a new array (k,)."""
    out = np.empty(k)
    discrete_gamma_rates_into(alpha, k, out)
    return out


# --- rate matrix and eigensystem ---------------------------------------------------------
@njit(cache=True)
def rate_matrix_into(exch, pi, q):
    """Q (4, 4) from exchangeabilities (6,) and π (4,): Q_ij = r_ij π_j, rows summing to
    0, scaled to mean rate −Σ π_i Q_ii = 1."""
    k = 0
    for i in range(4):
        q[i, i] = 0.0
    for i in range(4):
        for j in range(i + 1, 4):
            q[i, j] = exch[k] * pi[j]
            q[j, i] = exch[k] * pi[i]
            k += 1
    for i in range(4):
        s = 0.0
        for j in range(4):
            s += q[i, j]
        q[i, i] = -s
    mu = 0.0
    for i in range(4):
        mu += pi[i] * q[i, i]
    mu = -mu
    for i in range(4):
        for j in range(4):
            q[i, j] = q[i, j] / mu


#: Jacobi rotations stop on an off-diagonal entry below this fraction of its diagonal.
_JACOBI_EPS = 1e-18
_JACOBI_SWEEPS = 60


@njit(cache=True)
def symmetric_eigen_4(a, w, u):
    """Eigen-decomposition of a symmetric 4 × 4 matrix ``a`` (overwritten): eigenvalues
    ascending into ``w`` (4,), orthonormal eigenvectors into the columns of ``u``.

    Cyclic Jacobi rotations (Jacobi 1846; Rutishauser's formulation, Golub & Van Loan
    §8.5): accurate to a few ulps relative to ‖a‖ and, unlike LAPACK's ``syevd``
    through a SIMD BLAS, independent of memory alignment and thread count — the same
    bits in every process, which keeps optimiser and sampler paths reproducible
    across processes and workers."""
    n = 4
    for i in range(n):
        for j in range(n):
            u[i, j] = 1.0 if i == j else 0.0
    for _ in range(_JACOBI_SWEEPS):
        rotated = False
        for p in range(n - 1):
            for q in range(p + 1, n):
                apq = a[p, q]
                app = a[p, p]
                aqq = a[q, q]
                if abs(apq) <= _JACOBI_EPS * (abs(app) + abs(aqq)) or apq == 0.0:
                    a[p, q] = 0.0
                    a[q, p] = 0.0
                    continue
                rotated = True
                theta = (aqq - app) / (2.0 * apq)
                if abs(theta) > 1e150:
                    t = 0.5 / theta
                else:
                    t = 1.0 / (abs(theta) + math.sqrt(theta * theta + 1.0))
                    if theta < 0.0:
                        t = -t
                c = 1.0 / math.sqrt(t * t + 1.0)
                sn = t * c
                for k in range(n):
                    if k != p and k != q:
                        akp = a[k, p]
                        akq = a[k, q]
                        a[k, p] = c * akp - sn * akq
                        a[p, k] = a[k, p]
                        a[k, q] = sn * akp + c * akq
                        a[q, k] = a[k, q]
                a[p, p] = app - t * apq
                a[q, q] = aqq + t * apq
                a[p, q] = 0.0
                a[q, p] = 0.0
                for k in range(n):
                    ukp = u[k, p]
                    ukq = u[k, q]
                    u[k, p] = c * ukp - sn * ukq
                    u[k, q] = sn * ukp + c * ukq
        if not rotated:
            break
    for i in range(n):
        w[i] = a[i, i]
    # ascending order (selection sort of 4, columns of u alongside)
    for i in range(n - 1):
        m = i
        for j in range(i + 1, n):
            if w[j] < w[m]:
                m = j
        if m != i:
            tmp = w[i]
            w[i] = w[m]
            w[m] = tmp
            for k in range(n):
                tmp = u[k, i]
                u[k, i] = u[k, m]
                u[k, m] = tmp


@njit(cache=True)
def reversible_eigen_into(q, pi, lam, v, vinv):
    """λ (4,), V, V⁻¹ (4, 4) with Q = V diag(λ) V⁻¹, from the symmetrised
    Π^{1/2} Q Π^{-1/2}. The eigenvalue nearest 0 (the stationary mode; it comes out
    as ±1e-17) is set to exactly 0, so that P(t) tends to the stationary matrix for
    huge finite t instead of overflowing."""
    s = np.empty(4)
    for i in range(4):
        s[i] = math.sqrt(pi[i])
    sym = np.empty((4, 4))
    for i in range(4):
        for j in range(4):
            sym[i, j] = (s[i] * q[i, j]) / s[j]
    half = np.empty((4, 4))
    for i in range(4):
        for j in range(4):
            half[i, j] = (sym[i, j] + sym[j, i]) / 2.0
    w = np.empty(4)
    u = np.empty((4, 4))
    symmetric_eigen_4(half, w, u)
    zero = 0
    for i in range(1, 4):
        if abs(w[i]) < abs(w[zero]):
            zero = i
    for i in range(4):
        lam[i] = w[i]
    lam[zero] = 0.0
    for i in range(4):
        for j in range(4):
            v[i, j] = u[i, j] / s[i]
            vinv[i, j] = u[j, i] * s[j]


@njit(cache=True)
def pack_model_into(lam, v, vinv, rates, weights, pi, pinv, q, out):
    """The packed model vector of :func:`phylo._kernels.pruning.pack_model` written into
    ``out`` (MODEL_RATES + 2C + 1,), with the same F81 test: every off-diagonal
    Q_ij / π_j within 1e-12 (relative) of the first."""
    c = rates.shape[0]
    out[MODEL_NCAT] = float(c)
    out[MODEL_PINV] = pinv
    pos = True
    for i in range(4):
        out[MODEL_PI + i] = pi[i]
        out[MODEL_LAMBDA + i] = lam[i]
        if not pi[i] > 0.0:
            pos = False
    for i in range(4):
        for j in range(4):
            out[MODEL_V + 4 * i + j] = v[i, j]
            out[MODEL_VINV + 4 * i + j] = vinv[i, j]
            out[MODEL_Q + 4 * i + j] = q[i, j]
    for r in range(c):
        out[MODEL_RATES + r] = rates[r]
        out[MODEL_RATES + c + r] = weights[r]
    f81 = pos
    if pos:
        r0 = q[0, 1] / pi[1]
        for i in range(4):
            for j in range(4):
                if i != j and not abs(q[i, j] / pi[j] - r0) <= 1e-12 * abs(r0):
                    f81 = False
    out[MODEL_RATES + 2 * c] = 1.0 if f81 else 0.0


@njit(cache=True)
def packed_length(ncat):
    """Length of a packed model with ``ncat`` rate categories."""
    return MODEL_RATES + 2 * ncat + 1


# --- unconstrained model parameters -> packed model ---------------------------------------
@njit(cache=True)
def _softmax_last_zero(u, start, m, out):
    """out[:m+1] = softmax(u[start:start+m], 0): the additive log-ratio inverse of
    :class:`phylo.marginal.priors.DirichletPrior` (same operations)."""
    mx = 0.0
    for i in range(m):
        if u[start + i] > mx:
            mx = u[start + i]
    total = 0.0
    for i in range(m + 1):
        e = math.exp((u[start + i] if i < m else 0.0) - mx)
        out[i] = e
        total += e
    for i in range(m + 1):
        out[i] = out[i] / total


@njit(cache=True)
def _expit(u):
    """1 / (1 + e^{-u}) (SciPy's ``expit``)."""
    return 1.0 / (1.0 + math.exp(-u))


@njit(cache=True)
def model_from_unconstrained(u, free, fixed, exch, pi):
    """Fill ``exch`` (6,) and ``pi`` (4,) and return (valid, α, pinv) of the model at
    unconstrained parameters ``u`` (blocks in the order of the FREE_* flags that are
    set in ``free`` (5,): log κ; additive log-ratios of the six exchangeabilities (5);
    of π (3); log α; logit pinv); ``fixed`` (N_FIXED,) holds the values of the parts
    that are not free. ``valid`` is False where :class:`phylo.models.Model` would
    refuse the values (non-finite or non-positive rates, frequencies, shape; pinv
    outside [0, 1))."""
    valid = True
    i = 0
    for k in range(6):
        exch[k] = fixed[FIXED_EXCH + k]
    for k in range(4):
        pi[k] = fixed[FIXED_PI + k]
    alpha = fixed[FIXED_SHAPE]
    pinv = fixed[FIXED_PINV]
    if free[FREE_KAPPA]:
        kappa = math.exp(u[i])
        i += 1
        if not (kappa > 0.0 and kappa < np.inf):
            valid = False
        for k in range(6):
            exch[k] = kappa if _TRANSITION[k] else 1.0
    if free[FREE_EXCHANGEABILITIES]:
        x = np.empty(6)
        _softmax_last_zero(u, i, 5, x)
        i += 5
        for k in range(6):
            exch[k] = x[k] / x[5]
        for k in range(6):
            exch[k] = exch[k] / exch[5]
            if not (exch[k] > 0.0 and exch[k] < np.inf):
                valid = False
    if free[FREE_FREQUENCIES]:
        _softmax_last_zero(u, i, 3, pi)
        i += 3
        total = 0.0
        for k in range(4):
            if not (pi[k] > 0.0 and pi[k] < np.inf):
                valid = False
            total += pi[k]
        if not abs(total - 1.0) <= 1e-3:
            valid = False
        for k in range(4):
            pi[k] = pi[k] / total
    if free[FREE_GAMMA_SHAPE]:
        alpha = math.exp(u[i])
        i += 1
        if not (alpha > 0.0 and alpha < np.inf):
            valid = False
    if free[FREE_PINV]:
        pinv = _expit(u[i])
        i += 1
        if not (pinv >= 0.0 and pinv < 1.0):
            valid = False
    return valid, alpha, pinv


@njit(cache=True)
def packed_from_unconstrained(u, free, fixed, out):
    """Write the packed model at unconstrained parameters ``u`` into ``out`` and return
    True, or return False (``out`` unspecified) for values the model refuses. See
    :func:`model_from_unconstrained` for ``free``/``fixed``; π is at
    out[MODEL_PI:MODEL_PI + 4] afterwards."""
    exch = np.empty(6)
    pi = np.empty(4)
    valid, alpha, pinv = model_from_unconstrained(u, free, fixed, exch, pi)
    if not valid:
        return False
    ncat_gamma = int(fixed[FIXED_NCAT])
    c = max(1, ncat_gamma)
    rates = np.empty(c)
    if ncat_gamma:
        discrete_gamma_rates_into(alpha, ncat_gamma, rates)
    else:
        rates[0] = 1.0
    weights = np.empty(c)
    for r in range(c):
        rates[r] = rates[r] / (1.0 - pinv)
        weights[r] = (1.0 - pinv) / c
    q = np.empty((4, 4))
    rate_matrix_into(exch, pi, q)
    lam = np.empty(4)
    v = np.empty((4, 4))
    vinv = np.empty((4, 4))
    reversible_eigen_into(q, pi, lam, v, vinv)
    for k in range(4):
        if not (lam[k] == lam[k]):
            return False
    pack_model_into(lam, v, vinv, rates, weights, pi, pinv, q, out)
    return True


@njit(cache=True)
def invariant_likelihoods_into(pi, basis, out):
    """+I likelihoods Σ_{i compatible with every tip} π_i per pattern: ``basis`` (4, P)
    holds the 0/1 indicators of the states common to all tips, ``out`` (P,)."""
    for p in range(out.shape[0]):
        out[p] = ((basis[0, p] * pi[0] + basis[1, p] * pi[1]) + basis[2, p] * pi[2]) \
            + basis[3, p] * pi[3]


@njit(cache=True)
def packed_batch(us, free, fixed, models, basis, invs, has_inv):
    """Rows of :func:`packed_from_unconstrained` for every row of ``us`` (B, n_model)
    into ``models`` (B, L), with the +I likelihoods into ``invs`` (B, P) when
    ``has_inv``; returns valid (B,) booleans."""
    n = us.shape[0]
    ok = np.empty(n, dtype=np.bool_)
    for r in range(n):
        ok[r] = packed_from_unconstrained(us[r], free, fixed, models[r])
        if ok[r] and has_inv:
            invariant_likelihoods_into(models[r, MODEL_PI:MODEL_PI + 4], basis, invs[r])
    return ok
