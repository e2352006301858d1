"""Log densities of the unconstrained MCMC state z (pure Numba functions of arrays).

The chain loops of :mod:`phylo._kernels.mcmc` take a log-likelihood and a log-prior
as compiled functions ``f(z, args) -> float`` of the unconstrained vector z (d,)
(log branch lengths first, then unconstrained model parameters); the ones used by
:mod:`phylo.marginal` live here, with the reference densities of the generalised
stepping stone. Natural log throughout.
"""
from __future__ import annotations

import math

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
