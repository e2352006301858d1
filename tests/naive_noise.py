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
