"""Obviously-correct (slow) tree likelihoods for testing the kernels.

- :func:`brute_force_log_likelihood`: sums over every assignment of states to the
  internal nodes (4^(internal nodes)); P(t) by ``scipy.linalg.expm`` of the rate
  matrix built here from the definition (no eigen-decomposition shared with phylo).
- :func:`log_space_log_likelihood`: Felsenstein pruning entirely in log space with
  ``logsumexp`` (no rescaling needed), for large trees.
"""
from __future__ import annotations

import itertools

import numpy as np
from scipy.linalg import expm
from scipy.special import logsumexp

BITS = np.array([1, 2, 4, 8], dtype=np.uint8)


def rate_matrix(exch, pi) -> np.ndarray:
    """Q_ij = r_ij π_j, AC AG AT CG CT GT order, normalised to mean rate 1."""
    r = np.zeros((4, 4))
    k = 0
    for i in range(4):
        for j in range(i + 1, 4):
            r[i, j] = r[j, i] = exch[k]
            k += 1
    q = r * np.asarray(pi)[None, :]
    q -= np.diag(q.sum(axis=1))
    return q / -(np.asarray(pi) @ np.diag(q))


def _classes(model):
    """(rates, weights) of all classes including the +I rate-0 class."""
    rates = list(model.category_rates())
    weights = list(model.category_weights())
    if model.pinv > 0:
        rates.append(0.0)
        weights.append(model.pinv)
    return np.array(rates), np.array(weights)


def brute_force_pattern_likelihoods(alignment, tree, model) -> np.ndarray:
    """L_p for every pattern (not logged), shape (n_patterns,)."""
    tree = tree.with_taxa_order(alignment.taxa)
    q = rate_matrix(model.exchangeabilities, model.frequencies)
    pi = model.frequencies
    s, n = tree.n_leaves, tree.n_nodes
    tips = (alignment.patterns[:, :, None] & BITS) != 0          # (S, P, 4)
    rates, weights = _classes(model)
    out = np.zeros(alignment.n_patterns)
    internal = list(range(s, n))
    for rate, w in zip(rates, weights):
        pmat = [expm(q * rate * tree.branch_lengths[v]) for v in range(n - 1)]
        for states in itertools.product(range(4), repeat=len(internal)):
            st = dict(zip(internal, states))
            f = np.full(alignment.n_patterns, pi[st[n - 1]])
            for v in range(n - 1):
                a = st[tree.parent[v]]
                if v < s:
                    f = f * (tips[v] @ pmat[v][a])               # Σ_{j compatible} P_aj
                else:
                    f = f * pmat[v][a, st[v]]
            out += w * f
    return out


def brute_force_log_likelihood(alignment, tree, model) -> float:
    return float(alignment.weights @ np.log(brute_force_pattern_likelihoods(alignment, tree, model)))


def log_space_pattern_log_likelihoods(alignment, tree, model) -> np.ndarray:
    """ln L_p by pruning in log space (logsumexp), shape (n_patterns,)."""
    tree = tree.with_taxa_order(alignment.taxa)
    q = rate_matrix(model.exchangeabilities, model.frequencies)
    logpi = np.log(model.frequencies)
    s, n = tree.n_leaves, tree.n_nodes
    with np.errstate(divide="ignore"):
        logtips = np.log(((alignment.patterns[:, :, None] & BITS) != 0).astype(float))
    rates, weights = _classes(model)
    per_class = []
    for rate, w in zip(rates, weights):
        logp = [None] * n
        for v in range(s):
            logp[v] = logtips[v]
        # all branches at once from a general (non-symmetric) eigen-decomposition of Q,
        # independent of phylo's symmetrised one (scipy's expm is too slow for 4,000 calls)
        lam, vec = np.linalg.eig(q)
        lam, vec = lam.real, vec.real
        vinv = np.linalg.inv(vec)
        e = np.exp(lam[None, :] * (rate * tree.branch_lengths)[:, None])
        pm = np.einsum("ik,bk,kj->bij", vec, e, vinv)
        with np.errstate(divide="ignore"):
            logpm = np.log(np.clip(pm, 0, None))
        for u in range(s, n):
            acc = np.zeros((alignment.n_patterns, 4))
            for c in tree.children[u, :tree.n_children[u]]:
                acc = acc + _lse(logpm[c][None, :, :] + logp[c][:, None, :])
            logp[u] = acc
        per_class.append(np.log(w) + logsumexp(logp[n - 1] + logpi[None, :], axis=1))
    return logsumexp(np.array(per_class), axis=0)


def _lse(x: np.ndarray) -> np.ndarray:
    """log Σ exp over the last axis (scipy's logsumexp is slow for many tiny calls)."""
    m = x.max(axis=-1)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.exp(x - m[..., None]).sum(axis=-1)) + m
