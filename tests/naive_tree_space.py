"""Slow, independent references for the tree-space tests.

* :func:`quartet_log_likelihoods`: the JC69 likelihood of a 4-taxon unrooted tree
  ((a, b), (c, d)) written out by hand — Σ_{x,y} ¼ P_xa(t1) P_xb(t2) P_xy(t5) P_yc(t3)
  P_yd(t4) — vectorised over many branch-length vectors (no phylo code).
* :func:`quartet_log_z`: log Z_τ = log ∫ p(D|t) Π Exp(t_i; λ) dt over the five branch
  lengths by plain importance sampling in z = log t from a multivariate Student-t
  (5 degrees of freedom, heavier tails than the target) centred at the mode with
  1.5 × the Laplace covariance; 10⁶ draws give a standard error of ~10⁻³ nats,
  returned with the estimate. (A tensor Gauss–Hermite rule in five dimensions
  needed > 14 nodes per axis to settle to 0.01 nats: too slow for a test.)
* :func:`enumerate_unrooted`: every unrooted binary topology of n taxa by stepwise
  addition, as sets of splits (for counting checks).
"""
from __future__ import annotations

import itertools

import numpy as np
from scipy import optimize, special

BITS = np.array([1, 2, 4, 8], dtype=np.uint8)
#: The three quartet topologies of taxa 0..3: pairs (a, b | c, d).
QUARTETS = ((0, 1, 2, 3), (0, 2, 1, 3), (0, 3, 1, 2))


def quartet_log_likelihoods(patterns: np.ndarray, weights: np.ndarray, quartet, t: np.ndarray
                            ) -> np.ndarray:
    """patterns uint8 (4, P) unambiguous masks; t (G, 5): pendant a, b, c, d, internal
    → log p(D | t), shape (G,)."""
    a, b, c, d = quartet
    e = np.exp(-4.0 * t / 3.0)
    same = 0.25 + 0.75 * e
    diff = 0.25 - 0.25 * e
    out = np.zeros(t.shape[0])
    for p in range(patterns.shape[1]):
        obs = [int(np.flatnonzero(BITS == patterns[k, p])[0]) for k in (a, b, c, d)]
        total = np.zeros(t.shape[0])
        for x in range(4):
            left = 0.25 * np.where(obs[0] == x, same[:, 0], diff[:, 0]) \
                * np.where(obs[1] == x, same[:, 1], diff[:, 1])
            for y in range(4):
                right = np.where(obs[2] == y, same[:, 2], diff[:, 2]) \
                    * np.where(obs[3] == y, same[:, 3], diff[:, 3])
                total += left * np.where(x == y, same[:, 4], diff[:, 4]) * right
        out += weights[p] * np.log(total)
    return out


def _log_joint_z(patterns, weights, quartet, z, rate):
    t = np.exp(z)
    return (quartet_log_likelihoods(patterns, weights, quartet, t)
            + (np.log(rate) + z - rate * t).sum(axis=1))


def quartet_log_z(patterns: np.ndarray, weights: np.ndarray, quartet, rate: float = 10.0,
                  n_draws: int = 1_000_000, seed: int = 0) -> tuple[float, float]:
    """(log Z, its standard error) of one quartet topology (JC69, i.i.d.
    Exponential(rate) branches); see the module docstring."""
    f = lambda z: -float(_log_joint_z(patterns, weights, quartet, z[None, :], rate)[0])  # noqa: E731
    res = optimize.minimize(f, np.full(5, np.log(0.1)), method="BFGS", options={"gtol": 1e-9})
    res = optimize.minimize(f, res.x, method="Nelder-Mead",
                            options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 20000})
    mode = res.x
    h = 1e-4
    hess = np.empty((5, 5))
    for i, j in itertools.product(range(5), repeat=2):
        ei, ej = np.eye(5)[i] * h, np.eye(5)[j] * h
        hess[i, j] = (f(mode + ei + ej) - f(mode + ei - ej) - f(mode - ei + ej)
                      + f(mode - ei - ej)) / (4 * h * h)
    cov = 1.5 * np.linalg.inv(0.5 * (hess + hess.T))
    chol = np.linalg.cholesky(cov)
    nu = 5.0
    rng = np.random.default_rng(seed)
    logw = []
    for lo in range(0, n_draws, 200_000):
        m = min(200_000, n_draws - lo)
        g = rng.standard_normal((m, 5))
        chi = rng.chisquare(nu, m)
        x = g / np.sqrt(chi / nu)[:, None]
        z = mode + x @ chol.T
        # log density of the multivariate t(nu) with scale matrix cov
        q = (special.gammaln((nu + 5) / 2) - special.gammaln(nu / 2) - 2.5 * np.log(nu * np.pi)
             - np.log(np.linalg.det(chol)) - (nu + 5) / 2 * np.log1p((x * x).sum(axis=1) / nu))
        logw.append(_log_joint_z(patterns, weights, quartet, z, rate) - q)
    logw = np.concatenate(logw)
    top = logw.max()
    w = np.exp(logw - top)
    return float(np.log(w.mean()) + top), float(w.std(ddof=1) / (np.sqrt(w.size) * w.mean()))


def enumerate_unrooted(n: int) -> list[frozenset[frozenset[int]]]:
    """Every unrooted binary topology on taxa 0..n-1 (n ≥ 3) as its set of non-trivial
    splits (each split as the side without taxon 0), by stepwise addition."""
    # a tree as an edge list over nodes; leaves are 0..n-1, internal nodes n, n+1, ...
    trees = [[(0, n), (1, n), (2, n)]]
    for leaf in range(3, n):
        grown = []
        for edges in trees:
            new_node = n + leaf - 2
            for k, (u, v) in enumerate(edges):
                e = edges[:k] + edges[k + 1:] + [(u, new_node), (new_node, v), (leaf, new_node)]
                grown.append(e)
        trees = grown
    out = []
    for edges in trees:
        adj: dict[int, list[int]] = {}
        for u, v in edges:
            adj.setdefault(u, []).append(v)
            adj.setdefault(v, []).append(u)
        splits = set()
        for u, v in edges:
            if u < n or v < n:
                continue
            side, stack, seen = set(), [v], {u, v}
            while stack:
                x = stack.pop()
                if x < n:
                    side.add(x)
                for y in adj[x]:
                    if y not in seen:
                        seen.add(y)
                        stack.append(y)
            if 0 in side:
                side = set(range(n)) - side
            splits.add(frozenset(side))
        out.append(frozenset(splits))
    return out
