"""Log densities of the unconstrained MCMC state z (pure Numba functions of arrays).

The chain loops of :mod:`phylo._kernels.mcmc` take a log-likelihood and a log-prior
as compiled functions ``f(z, args) -> float`` of the unconstrained vector z (d,)
(log branch lengths first, then unconstrained model parameters); the ones used by
:mod:`phylo.marginal` live here, with the reference densities of the generalised
stepping stone. Natural log throughout.
"""
from __future__ import annotations

import math

import numpy as np

from numba import njit

from . import blocks as _blocks


@njit(cache=True)
def tree_loglik_z(z, args):
    """log L of the shared pruning kernel at branch lengths e^{z[:n_branches]}.

    args = (bl buffer (n_branches,), the arguments after ``bl`` of
    (:func:`phylo._kernels.blocks.any_log_likelihood`) as a tuple); ``bl`` is overwritten.
    """
    bl = args[0]
    for i in range(bl.shape[0]):
        bl[i] = math.exp(z[i])
    return _blocks.any_log_likelihood(bl, *args[1])


@njit(cache=True)
def exp_prior_z(z, args):
    """log density of z = log t for i.i.d. Exponential(rate) t; args = (rate, n_branches)."""
    rate = args[0]
    nb = args[1]
    s = nb * math.log(rate)
    for i in range(nb):
        s += z[i] - rate * math.exp(z[i])
    return s


@njit(cache=True)
def exp_prior_t(z, t, rate, nb):
    """:func:`exp_prior_z` given t = exp(z) (same operations in the same order, so
    the same value bit for bit, without the exps)."""
    s = nb * math.log(rate)
    for i in range(nb):
        s += z[i] - rate * t[i]
    return s


@njit(cache=True)
def log_reference(z, kind, a, b):
    """log q(z) of a product reference: kind 0 = Gamma(a, rate b) on e^z (Jacobian
    included), kind 1 = Normal(a, sd b) on z. Shapes (d,)."""
    s = 0.0
    for i in range(z.shape[0]):
        if kind[i] == 0:
            s += a[i] * math.log(b[i]) - math.lgamma(a[i]) + a[i] * z[i] - b[i] * math.exp(z[i])
        else:
            r = (z[i] - a[i]) / b[i]
            s += -0.5 * r * r - math.log(b[i]) - 0.5 * math.log(2.0 * math.pi)
    return s


@njit(cache=True)
def toy_poisson_loglik(z, args):
    """Poisson–Gamma toy: log L = Σ_i Y_i z_i − E e^{z_i} + c; args = (Y (n,), E, c)."""
    y = args[0]
    e = args[1]
    s = args[2]
    for i in range(y.shape[0]):
        s += y[i] * z[i] - e * math.exp(z[i])
    return s


@njit(cache=True)
def _log1p_exp(x):
    """log(1 + e^x) as NumPy's ``logaddexp(0, x)``: max + log1p(e^{−|x|})."""
    if x > 0.0:
        return x + math.log1p(math.exp(-x))
    return math.log1p(math.exp(x))


@njit(cache=True)
def _dirichlet_alr_log_density(u, start, m, conc):
    """log density of the additive log-ratios u[start:start+m] of a flat-or-not
    Dirichlet(conc, …, conc) on m + 1 components (log-Jacobian Σ log x_k included),
    as :class:`phylo.marginal.priors.DirichletPrior`."""
    k = m + 1
    mx = 0.0
    for i in range(m):
        if u[start + i] > mx:
            mx = u[start + i]
    x = np.empty(k)
    total = 0.0
    for i in range(k):
        x[i] = math.exp((u[start + i] if i < m else 0.0) - mx)
        total += x[i]
    s = 0.0
    check = 0.0
    for i in range(k):
        x[i] = x[i] / total
        check += x[i]
        if not x[i] > 0.0:
            return -np.inf
    if abs(check - 1.0) > 1e-8:
        return -np.inf
    logsum = 0.0
    for i in range(k):
        logsum += math.log(x[i])
    s = math.lgamma(conc * k) - k * math.lgamma(conc) + (conc - 1.0) * logsum
    return s + logsum


@njit(cache=True)
def model_log_prior(u, free, prior):
    """log p(u) of unconstrained model parameters (log-Jacobians included), blocks as
    :func:`phylo._kernels.models.model_from_unconstrained`: LogNormal(μ, σ) on κ = e^u,
    Dirichlet on the exchangeabilities and on π (additive log-ratios), Gamma(shape,
    rate) on α = e^u, Uniform(0, 1) on pinv = expit(u); parameters in ``prior``
    (layout PRIOR_* of :mod:`phylo._kernels.models`). The same densities as
    :mod:`phylo.marginal.priors`, compiled for the samplers."""
    lp = 0.0
    i = 0
    if free[0]:                      # κ: LogNormal
        x = math.exp(u[i])
        if not x > 0.0:
            return -np.inf
        z = (math.log(x) - prior[0]) / prior[1]
        lp += -0.5 * z * z - math.log(x * prior[1]) - 0.5 * math.log(2.0 * math.pi) + u[i]
        i += 1
    if free[1]:                      # exchangeabilities: Dirichlet(6)
        lp += _dirichlet_alr_log_density(u, i, 5, prior[2])
        i += 5
    if free[2]:                      # frequencies: Dirichlet(4)
        lp += _dirichlet_alr_log_density(u, i, 3, prior[3])
        i += 3
    if free[3]:                      # Γ shape: Gamma(shape, rate)
        x = math.exp(u[i])
        if not x > 0.0:
            return -np.inf
        a = prior[4]
        b = prior[5]
        lp += a * math.log(b) - math.lgamma(a) + (a - 1.0) * math.log(x) - b * x + u[i]
        i += 1
    if free[4]:                      # pinv: Uniform(0, 1) on the logit scale
        x = 1.0 / (1.0 + math.exp(-u[i]))
        if not (x > 0.0 and x < 1.0):
            return -np.inf
        lp += -_log1p_exp(u[i]) - _log1p_exp(-u[i])
        i += 1
    return lp
