"""Slow, obviously correct references for the marginal-likelihood tests.

* :func:`jc3_pattern_log_likelihoods`: the JC69 likelihood of a 3-taxon star tree
  written out by hand (sum over the root state of Π_i P(t_i)[r, x_i]), vectorised
  over many branch-length vectors.
* :func:`jc3_log_z_quadrature`: log Z = log ∫ p(D|t) Π Exp(t_i; λ) dt by a tensor
  composite Gauss–Legendre rule in z = log t (three panels per axis: the left tail,
  ±``width`` posterior standard deviations around the mode, the right tail).
"""
from __future__ import annotations

import numpy as np
from scipy import optimize, special

BITS = np.array([1, 2, 4, 8], dtype=np.uint8)


def jc3_pattern_log_likelihoods(patterns: np.ndarray, t: np.ndarray) -> np.ndarray:
    """patterns uint8 (3, P) of unambiguous masks; t (G, 3) → log L_p, shape (G, P)."""
    e = np.exp(-4.0 * t / 3.0)
    same = 0.25 + 0.75 * e          # (G, 3)
    diff = 0.25 - 0.25 * e
    out = np.empty((t.shape[0], patterns.shape[1]))
    for p in range(patterns.shape[1]):
        total = np.zeros(t.shape[0])
        for r in BITS:
            prod = np.ones(t.shape[0])
            for i in range(3):
                prod = prod * np.where(patterns[i, p] == r, same[:, i], diff[:, i])
            total += 0.25 * prod
        out[:, p] = np.log(total)
    return out


def jc3_log_joint_z(patterns, weights, z: np.ndarray, rate: float) -> np.ndarray:
    """log p(D|t) + log p(z) (Exponential prior, Jacobian of t = e^z), z (G, 3) → (G,)."""
    t = np.exp(z)
    ll = jc3_pattern_log_likelihoods(patterns, t) @ weights
    return ll + (np.log(rate) + z - rate * t).sum(axis=1)


def _panel_rule(edges, nodes_per_panel):
    x, w = np.polynomial.legendre.leggauss(nodes_per_panel)
    xs, ws = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        xs.append(0.5 * (b - a) * x + 0.5 * (b + a))
        ws.append(0.5 * (b - a) * w)
    return np.concatenate(xs), np.concatenate(ws)


def jc3_log_z_quadrature(patterns: np.ndarray, weights: np.ndarray, rate: float = 10.0,
                         *, width: float = 8.0, n_center: int = 64, n_tail: int = 24,
                         lower: float = -25.0, upper: float = 3.0) -> float:
    """log Z of the 3-taxon JC posterior by tensor Gauss–Legendre quadrature in z."""
    def negf(z):
        return -float(jc3_log_joint_z(patterns, weights, z[None, :], rate)[0])
    res = optimize.minimize(negf, np.full(3, np.log(0.1)), method="Nelder-Mead",
                            options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 5000})
    mode = res.x
    sd = np.empty(3)
    h = 1e-4
    for i in range(3):
        e = np.zeros(3)
        e[i] = h
        d2 = (negf(mode + e) - 2 * negf(mode) + negf(mode - e)) / h ** 2
        sd[i] = 1.0 / np.sqrt(max(d2, 1e-6))
    rules = []
    for i in range(3):
        lo, hi = mode[i] - width * sd[i], mode[i] + width * sd[i]
        xl, wl = _panel_rule([lower, lo], n_tail)
        xc, wc = _panel_rule(np.linspace(lo, hi, 5), n_center // 4)
        xr, wr = _panel_rule([hi, upper], n_tail)
        rules.append((np.concatenate([xl, xc, xr]), np.concatenate([wl, wc, wr])))
    (x0, w0), (x1, w1), (x2, w2) = rules
    logw1 = np.log(w1)[:, None] + np.log(w2)[None, :]
    z12 = np.stack(np.meshgrid(x1, x2, indexing="ij"), axis=-1).reshape(-1, 2)
    terms = []
    for a, wa in zip(x0, w0):
        z = np.column_stack([np.full(z12.shape[0], a), z12])
        f = jc3_log_joint_z(patterns, weights, z, rate)
        terms.append(np.log(wa) + special.logsumexp(f + logw1.ravel()))
    return float(special.logsumexp(terms))
