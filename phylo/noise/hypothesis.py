"""Noise inference and branching inference as parametric-bootstrap tests.

The two classification tasks of Sadeqi Azer et al. (2020), answered with
calibrated tests instead of a trained network:

- :func:`noise_test` — H0: A′ is a conflict-free matrix observed through the
  noise model (α, β). Statistic: the log-likelihood of the ML conflict-free
  matrix Â. Null distribution: the same statistic on matrices simulated from Â
  with (α, β) and the observed missing pattern, each solved again. Small p:
  the conflicts need more than the noise model explains (e.g. the infinite sites
  assumption fails).
- :func:`branching_test` — H0: the tree is linear (columns nested).
  Statistic: the likelihood ratio log L(best tree) − log L(best linear tree).
  Null distribution: simulated from the best linear matrix. Small p: branching.

p-values are (1 + #{null at least as extreme}) / (1 + B), valid at any B.
When α or β is None it is estimated once on the data (:func:`solve`) and then
held fixed in the bootstrap.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import PhyloError
from .inference import Solution, _validate_observed, check_seed, solve, solve_linear
from .io import MISSING
from .simulate import add_noise


@dataclass(frozen=True)
class TestResult:
    """``statistic`` on the data, its bootstrap ``null`` values, the ``p_value``
    and the fitted solutions (``fit``: best tree; ``linear_fit`` for branching)."""

    __test__ = False  # not a pytest class

    statistic: float
    p_value: float
    null: np.ndarray
    alpha: float
    beta: float
    fit: Solution
    linear_fit: Solution | None = None

    def reject(self, level: float = 0.05) -> bool:
        return self.p_value <= level


def _resimulate(A: np.ndarray, mask: np.ndarray, alpha: float, beta: float,
                seed: int) -> np.ndarray:
    D = add_noise(A, alpha, beta, seed=seed)
    D[mask] = MISSING
    return D


def _check_b(n_bootstrap: int) -> None:
    if n_bootstrap < 1:
        raise PhyloError(f"n_bootstrap must be >= 1, got {n_bootstrap}")


def _seeds(seed: int | None, n: int) -> list[int]:
    """Independent int seeds for the fit and each bootstrap replicate."""
    return [int(x) for x in np.random.SeedSequence(check_seed(seed)).generate_state(n)
            % (2**31 - 1)]


def noise_test(observed, *, alpha: float | None = None, beta: float | None = None,
               n_bootstrap: int = 99, restarts: int = 1, seed: int | None = None) -> TestResult:
    """Is A′ explained by a conflict-free matrix plus noise? (small p: no)."""
    _check_b(n_bootstrap)
    D = _validate_observed(observed)
    seeds = _seeds(seed, 1 + 2 * n_bootstrap)
    fit = solve(D, alpha=alpha, beta=beta, restarts=restarts, seed=seeds[0])
    a, b = fit.alpha, fit.beta
    mask = D == MISSING
    null = np.empty(n_bootstrap)
    for k in range(n_bootstrap):
        Dk = _resimulate(fit.matrix, mask, a, b, seeds[1 + 2 * k])
        null[k] = solve(Dk, alpha=a, beta=b, restarts=restarts,
                        seed=seeds[2 + 2 * k]).log_likelihood
    stat = fit.log_likelihood
    p = (1 + np.sum(null <= stat + 1e-9)) / (1 + n_bootstrap)
    return TestResult(stat, float(p), null, a, b, fit)


def _lr(D, a, b, restarts, seed) -> tuple[float, Solution, Solution]:
    tree = solve(D, alpha=a, beta=b, restarts=restarts, seed=seed)
    lin = solve_linear(D, alpha=a, beta=b, restarts=restarts, seed=seed)
    # a chain is a tree: never let search noise make the ratio negative
    return max(tree.log_likelihood - lin.log_likelihood, 0.0), tree, lin


def branching_test(observed, *, alpha: float | None = None, beta: float | None = None,
                   n_bootstrap: int = 99, restarts: int = 1,
                   seed: int | None = None) -> TestResult:
    """Does the tree branch? H0 linear; small p: branching."""
    _check_b(n_bootstrap)
    D = _validate_observed(observed)
    seeds = _seeds(seed, 2 + 2 * n_bootstrap)
    fit = solve(D, alpha=alpha, beta=beta, restarts=restarts, seed=seeds[0])
    a, b = fit.alpha, fit.beta
    stat, tree, lin = _lr(D, a, b, restarts, seeds[1])
    mask = D == MISSING
    null = np.empty(n_bootstrap)
    for k in range(n_bootstrap):
        Dk = _resimulate(lin.matrix, mask, a, b, seeds[2 + 2 * k])
        null[k] = _lr(Dk, a, b, restarts, seeds[3 + 2 * k])[0]
    p = (1 + np.sum(null >= stat - 1e-9)) / (1 + n_bootstrap)
    return TestResult(stat, float(p), null, a, b, tree, lin)
