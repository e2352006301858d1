"""Pareto-k̂ diagnostic of importance weights (Vehtari, Simpson, Gelman, Yao & Gabry,
"Pareto smoothed importance sampling", JMLR 25, 2024).

The largest ``M = min(0.2 n, 3 √n)`` weights are modelled as a generalized Pareto
tail above the (M+1)-th largest weight; its shape k is fitted with the empirical
Bayes estimator of Zhang & Stephens (2009, Technometrics 51:316, "A new and
efficient estimation method for the generalized Pareto distribution"), followed by
Vehtari et al.'s weakly informative shrinkage towards k = 0.5. k̂ > 0.7 means the
weights have so heavy a tail that the importance-sampling estimate (and its
delta-method standard error) cannot be trusted at any practical sample size;
0.5 < k̂ ≤ 0.7 converges slowly.
"""
from __future__ import annotations

import math

import numpy as np

#: Above this k̂ the importance-sampling estimate is unreliable (Vehtari et al. 2024, §3).
KHAT_UNRELIABLE = 0.7
#: Fewer tail draws than this: no k̂ (the fit needs a handful of exceedances).
MIN_TAIL = 5
#: Zhang & Stephens' prior: the grid of θ values is scaled by PRIOR_BS times the first
#: quartile, and k̂ is shrunk towards 0.5 with PRIOR_K pseudo-observations.
PRIOR_BS = 3.0
PRIOR_K = 10.0


def gpd_fit(exceedances: np.ndarray) -> tuple[float, float]:
    """Shape k and scale σ of a generalized Pareto fit to positive ``exceedances``.

    Parametrisation: P(X > x) = (1 + k x / σ)^(−1/k). Zhang & Stephens (2009): over a
    grid of θ = −k/σ values, the profile likelihood gives k(θ) = mean log(1 − θ x);
    the estimate of θ is the posterior mean over the grid (weights ∝ profile
    likelihood), and k is recomputed at it. Returns (k, σ) before any shrinkage.
    """
    x = np.sort(np.asarray(exceedances, dtype=np.float64))
    n = x.shape[0]
    if n < 2 or not np.all(np.isfinite(x)) or x[-1] <= 0:
        raise ValueError("gpd_fit needs at least two finite positive exceedances")
    m = 30 + int(math.sqrt(n))
    quartile = x[max(int(n / 4 + 0.5) - 1, 0)]
    if quartile <= 0:
        quartile = x[x > 0][0]
    j = np.arange(1, m + 1, dtype=np.float64)
    theta = 1.0 / x[-1] + (1.0 - np.sqrt(m / (j - 0.5))) / (PRIOR_BS * quartile)
    k = np.log1p(-theta[:, None] * x[None, :]).mean(axis=1)
    profile = n * (np.log(-theta / k) - k - 1.0)
    w = np.exp(profile - profile.max())
    w /= w.sum()
    theta_hat = float(np.sum(theta * w))
    k_hat = float(np.log1p(-theta_hat * x).mean())
    sigma = -k_hat / theta_hat
    return k_hat, sigma


def pareto_khat(log_weights: np.ndarray) -> float:
    """PSIS k̂ of importance weights given on the log scale, shape (n,).

    Returns NaN when there are too few draws for a tail fit (fewer than
    :data:`MIN_TAIL` tail draws, i.e. n < 25) or the tail is flat (all tail weights
    equal, k̂ undefined: the weights are then bounded).
    """
    lw = np.asarray(log_weights, dtype=np.float64)
    lw = lw[np.isfinite(lw)]
    n = lw.shape[0]
    n_tail = int(min(math.ceil(0.2 * n), math.ceil(3.0 * math.sqrt(n))))
    if n_tail < MIN_TAIL or n_tail >= n:
        return math.nan
    order = np.sort(lw)
    threshold = order[n - n_tail - 1]
    tail = order[n - n_tail:]
    shift = tail[-1]
    x = np.exp(tail - shift) - math.exp(threshold - shift)
    x = x[x > 0]
    if x.shape[0] < MIN_TAIL:
        return math.nan
    k, _ = gpd_fit(x)
    # weakly informative prior (Vehtari et al. 2024, appendix): shrink towards 0.5
    nx = x.shape[0]
    return float((nx * k + PRIOR_K * 0.5) / (nx + PRIOR_K))


def importance_ess(log_weights: np.ndarray) -> float:
    """Kish effective sample size (Σw)² / Σw² of log-scale weights."""
    lw = np.asarray(log_weights, dtype=np.float64)
    lw = lw[np.isfinite(lw)]
    if lw.size == 0:
        return 0.0
    w = np.exp(lw - lw.max())
    return float(w.sum() ** 2 / np.sum(w * w))
