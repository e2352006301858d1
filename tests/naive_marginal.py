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


# -- K80 with a κ prior: the free-model-parameter path ----------------------------------
#: Index of each state mask (A=1, C=2, G=4, T=8) in the order A, C, G, T.
_STATE_INDEX = {1: 0, 2: 1, 4: 2, 8: 3}
#: Transitions A<->G and C<->T in the order A, C, G, T.
_IS_TRANSITION = np.array([[0, 0, 1, 0], [0, 0, 0, 1], [1, 0, 0, 0], [0, 1, 0, 0]], dtype=bool)


def k80_transition_probabilities(t: np.ndarray, kappa: float) -> np.ndarray:
    """P(t) of K80 normalised to one expected substitution per unit t: (len(t), 4, 4).

    Transition rate a = κ/(κ + 2), each transversion b = 1/(κ + 2); closed form
    (Kimura 1980): P_same = ¼ + ¼e^{−4bt} + ½e^{−2(a+b)t}, P_ts = ¼ + ¼e^{−4bt} −
    ½e^{−2(a+b)t}, P_tv = ¼ − ¼e^{−4bt}.
    """
    t = np.asarray(t, dtype=np.float64)
    a, b = kappa / (kappa + 2.0), 1.0 / (kappa + 2.0)
    e1 = np.exp(-4.0 * b * t)
    e2 = np.exp(-2.0 * (a + b) * t)
    same = 0.25 + 0.25 * e1 + 0.5 * e2
    ts = 0.25 + 0.25 * e1 - 0.5 * e2
    tv = 0.25 - 0.25 * e1
    out = np.empty(t.shape + (4, 4))
    out[...] = tv[..., None, None]
    out[..., _IS_TRANSITION] = ts[..., None]
    idx = np.arange(4)
    out[..., idx, idx] = same[..., None]
    return out


def k80_3_log_likelihood(patterns: np.ndarray, weights: np.ndarray, t: np.ndarray,
                         kappa: float) -> float:
    """log L of a 3-taxon star tree under K80 with branch lengths t (3,), by hand."""
    p = k80_transition_probabilities(np.asarray(t, dtype=np.float64), kappa)   # (3, 4, 4)
    x = np.vectorize(_STATE_INDEX.__getitem__)(patterns)                       # (3, P)
    site = 0.25 * (p[0][:, x[0]] * p[1][:, x[1]] * p[2][:, x[2]]).sum(axis=0)
    return float(weights @ np.log(site))


def k80_3_log_z_quadrature(patterns: np.ndarray, weights: np.ndarray, *, rate: float = 10.0,
                           kappa_mu: float = 1.0, kappa_sigma: float = 1.25,
                           width: float = 8.0, n_center: int = 24, n_tail: int = 8,
                           lower: float = -25.0, upper: float = 3.0) -> float:
    """log Z = log ∫ p(D | t, κ) Π Exp(t_i; rate) LogNormal(κ; μ, σ) dt dκ for a 3-taxon
    star tree under K80, by tensor Gauss–Legendre quadrature in (log κ, log t₁..₃).

    Each axis: a left tail, ±``width`` marginal posterior standard deviations around
    the mode (four panels, ``n_center`` nodes), a right tail; the marginal sds come
    from the inverse Hessian at the mode. For every κ node the branch integral is a
    tensor sum of the per-pattern likelihoods, Σ_r ¼ Π_i P(t_i)[r, x_i], built from
    one (nodes, 4) table per branch.
    """
    x = np.vectorize(_STATE_INDEX.__getitem__)(patterns)
    w = np.asarray(weights, dtype=np.float64)

    def log_joint(v: np.ndarray) -> float:
        lk, z = v[0], v[1:]
        t = np.exp(z)
        lp = (np.log(rate) + z - rate * t).sum()
        lp += -0.5 * ((lk - kappa_mu) / kappa_sigma) ** 2 - np.log(kappa_sigma * np.sqrt(2 * np.pi))
        return k80_3_log_likelihood(patterns, w, t, float(np.exp(lk))) + lp

    start = np.array([kappa_mu, *np.full(3, np.log(0.1))])
    res = optimize.minimize(lambda v: -log_joint(v), start, method="Nelder-Mead",
                            options={"xatol": 1e-9, "fatol": 1e-11, "maxiter": 20000})
    mode = res.x
    h = 1e-4
    hess = np.empty((4, 4))
    f0 = log_joint(mode)
    for i in range(4):
        for j in range(4):
            ei, ej = np.zeros(4), np.zeros(4)
            ei[i], ej[j] = h, h
            hess[i, j] = -(log_joint(mode + ei + ej) - log_joint(mode + ei - ej)
                           - log_joint(mode - ei + ej) + log_joint(mode - ei - ej)) / (4 * h * h)
    del f0
    sd = np.sqrt(np.diag(np.linalg.inv(hess)))
    rules = []
    bounds = [(kappa_mu - 10 * kappa_sigma, kappa_mu + 10 * kappa_sigma)] + [(lower, upper)] * 3
    for i in range(4):
        lo, hi = mode[i] - width * sd[i], mode[i] + width * sd[i]
        lo, hi = max(lo, bounds[i][0] + 1e-9), min(hi, bounds[i][1] - 1e-9)
        xl, wl = _panel_rule([bounds[i][0], lo], n_tail)
        xc, wc = _panel_rule(np.linspace(lo, hi, 5), n_center // 4)
        xr, wr = _panel_rule([hi, bounds[i][1]], n_tail)
        rules.append((np.concatenate([xl, xc, xr]), np.concatenate([wl, wc, wr])))
    (lk_nodes, lk_w), *branch_rules = rules
    # branch-length prior (with Jacobian) and weights, per axis: (n_i,)
    log_bw = [np.log(wi) + np.log(rate) + zi - rate * np.exp(zi) for zi, wi in branch_rules]
    terms = []
    for lk, wk in zip(lk_nodes, lk_w):
        kappa = float(np.exp(lk))
        tables = [k80_transition_probabilities(np.exp(zi), kappa) for zi, _ in branch_rules]
        log_l = np.zeros((len(log_bw[0]), len(log_bw[1]), len(log_bw[2])))
        for p in range(x.shape[1]):
            m = [tables[i][:, :, x[i, p]] for i in range(3)]            # (n_i, 4) over root r
            site = 0.25 * np.einsum("ar,br,cr->abc", m[0], m[1], m[2], optimize=True)
            log_l += w[p] * np.log(site)
        f = (log_l + log_bw[0][:, None, None] + log_bw[1][None, :, None]
             + log_bw[2][None, None, :])
        log_prior_k = (-0.5 * ((lk - kappa_mu) / kappa_sigma) ** 2
                       - np.log(kappa_sigma * np.sqrt(2 * np.pi)))
        terms.append(np.log(wk) + log_prior_k + special.logsumexp(f))
    return float(special.logsumexp(terms))
