"""Slow, obviously correct reference implementations for the noise module tests."""
from __future__ import annotations

import itertools
import math

import numpy as np

MISSING = 3


def three_gametes_pairs(A: np.ndarray) -> list[tuple[int, int]]:
    """All column pairs (a < b) showing (1,0), (0,1) and (1,1)."""
    out = []
    m = A.shape[1]
    for a in range(m):
        for b in range(a + 1, m):
            x, y = A[:, a] == 1, A[:, b] == 1
            if (x & ~y).any() and (~x & y).any() and (x & y).any():
                out.append((a, b))
    return out


def is_linear(A: np.ndarray) -> bool:
    """Every pair of columns nested (one contains the other)."""
    m = A.shape[1]
    for a in range(m):
        for b in range(a + 1, m):
            x, y = A[:, a] == 1, A[:, b] == 1
            if not ((x <= y).all() or (y <= x).all()):
                return False
    return True


def log_likelihood(D: np.ndarray, A: np.ndarray, alpha: float, beta: float) -> float:
    total = 0.0
    for d, a in zip(D.ravel(), A.ravel()):
        if d == MISSING:
            continue
        if a == 0:
            total += math.log(alpha) if d == 1 else math.log(1 - alpha)
        else:
            total += math.log(1 - beta) if d == 1 else math.log(beta)
    return total


def all_matrices(n: int, m: int):
    for bits in itertools.product((0, 1), repeat=n * m):
        yield np.array(bits, dtype=np.int8).reshape(n, m)


def brute_force_ml(D: np.ndarray, alpha: float, beta: float, *, linear: bool = False
                   ) -> float:
    """Best log-likelihood over all conflict-free (or linear) 0/1 matrices."""
    n, m = D.shape
    best = -math.inf
    for A in all_matrices(n, m):
        if three_gametes_pairs(A):
            continue
        if linear and not is_linear(A):
            continue
        best = max(best, log_likelihood(D, A, alpha, beta))
    return best


def tree_score(deltaT: np.ndarray, parent: np.ndarray) -> float:
    """Σ over cells of the best attachment score of a mutation tree (root =
    len(parent), scoring 0), by walking every node's root path."""
    n, c = deltaT.shape
    best = np.zeros(c)
    for x in range(n):
        path = np.zeros(c)
        y, steps = x, 0
        while y != n:
            path += deltaT[y]
            y = parent[y]
            steps += 1
            assert steps <= n, "cycle"
        best = np.maximum(best, path)
    return float(best.sum())


def _subtree(parent: np.ndarray, v: int) -> set[int]:
    n = parent.size
    out = set()
    for x in range(n):
        y = x
        while y != n:
            if y == v:
                out.add(x)
                break
            y = parent[y]
    return out


def reattach_scores(deltaT: np.ndarray, parent: np.ndarray, v: int) -> dict[int, float]:
    """Score of the tree with v's subtree moved below u, for every u outside it."""
    n = parent.size
    inside = _subtree(parent, v)
    out = {}
    for u in range(n + 1):
        if u in inside:
            continue
        t = parent.copy()
        t[v] = u
        out[u] = tree_score(deltaT, t)
    return out


def relocate_tree(parent: np.ndarray, v: int, kind: int, target: int) -> np.ndarray:
    """v taken out (its children move to its parent), then put back as a leaf
    under ``target`` (kind 0) or inserted above ``target`` (kind 1)."""
    n = parent.size
    t = np.where(parent == v, parent[v], parent)
    if kind == 0:
        t[v] = target
    else:
        t[v] = t[target]
        t[target] = v
    return t


def relocate_scores(deltaT: np.ndarray, parent: np.ndarray, v: int
                    ) -> dict[tuple[int, int], float]:
    """Score of every single-node relocation of v: (kind, target) -> score."""
    n = parent.size
    out = {}
    for u in range(n + 1):
        if u != v:
            out[(0, u)] = tree_score(deltaT, relocate_tree(parent, v, 0, u))
    for w in range(n):
        if w != v:
            out[(1, w)] = tree_score(deltaT, relocate_tree(parent, v, 1, w))
    return out
