"""Noise elimination: the maximum-likelihood conflict-free matrix.

Noise model (Jahn et al. 2016, SCITE; Malikic et al. 2019, PhISCS): every
observed entry A′[c, j] is independent given the true A[c, j]; a true 0 reads 1
with probability α (false positive), a true 1 reads 0 with probability β (false
negative); missing entries contribute nothing. The log-likelihood (natural log)
of a true matrix A is

    Σ_{A′=0, A=0} log(1−α) + Σ_{A′=1, A=0} log α + Σ_{A′=0, A=1} log β + Σ_{A′=1, A=1} log(1−β).

Every conflict-free matrix is the matrix of a mutation tree (mutations are the
nodes, a cell attached at v carries the mutations on the root→v path; cells may
attach to the root; identical columns are chains, an empty column is a mutation
no cell attaches below), and conversely, so the ML conflict-free matrix is the
ML over (mutation tree, attachments). For a fixed tree the best attachment of
every cell follows from one pre-order accumulation of per-entry score
differences (O(cells · mutations)). :func:`solve` searches trees by SCITE's moves
(prune-and-reattach, where the best new position of a subtree is found for all
positions in one pass, and node swaps) as an iterated local search with seeded
restarts; :func:`solve` with ``method='exact'`` enumerates every mutation tree
(n ≤ 8) instead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._kernels import noise as _k
from ..errors import GenotypeError, PhyloError
from .io import MISSING
from .simulate import tree_matrix

#: largest number of mutations for which ``method='exact'`` enumerates trees
EXACT_MAX_MUTATIONS = 8
#: rates are kept inside [RATE_FLOOR, 0.5) when estimated
RATE_FLOOR = 1e-6
_MAX_ROUNDS = 1000  # local search stops earlier, at a local optimum
_KICK_SIZE = 2     # random subtree moves per perturbation


@dataclass(frozen=True)
class Solution:
    """An inferred conflict-free matrix and its mutation tree.

    ``matrix``: int8[cells, mutations] (0/1); ``parent``: int64[mutations] (value
    ``mutations`` = root); ``attachment``: int64[cells] (``mutations`` = root);
    ``log_likelihood``: natural log under (α, β); ``flips``: observed (non-missing)
    entries that differ from ``matrix``; ``false_positives``/``false_negatives``:
    observed 1 → 0 and observed 0 → 1 corrections."""

    matrix: np.ndarray
    parent: np.ndarray
    attachment: np.ndarray
    log_likelihood: float
    alpha: float
    beta: float
    flips: int
    false_positives: int
    false_negatives: int
    linear: bool = False

    def newick(self, mutations: list[str] | None = None, root: str = "root") -> str:
        """The mutation tree in Newick (mutation names as node labels)."""
        return tree_newick(self.parent, mutations, root=root)


def _validate_observed(D) -> np.ndarray:
    D = np.asarray(D)
    if D.ndim != 2 or D.shape[0] == 0 or D.shape[1] == 0:
        raise GenotypeError(f"genotype matrix must be non-empty cells × mutations, "
                            f"got shape {D.shape}")
    if not np.isin(D, (0, 1, MISSING)).all():
        raise GenotypeError("genotype entries must be 0, 1 or 3 (missing)")
    return np.ascontiguousarray(D, dtype=np.int8)


def _validate_rate(name: str, value: float) -> float:
    value = float(value)
    if not (0.0 < value < 1.0) or math.isnan(value):
        raise PhyloError(f"{name} must be strictly between 0 and 1, got {value}")
    return value


def _logs(alpha: float, beta: float) -> tuple[float, float, float, float]:
    return math.log(alpha), math.log1p(-alpha), math.log(beta), math.log1p(-beta)


def log_likelihood(observed, true, alpha: float, beta: float) -> float:
    """log P(observed | true) under the noise model (natural log)."""
    D = _validate_observed(observed)
    A = np.asarray(true)
    if A.shape != D.shape:
        raise GenotypeError(f"shapes differ: observed {D.shape}, true {A.shape}")
    la, l1a, lb, l1b = _logs(_validate_rate("alpha", alpha), _validate_rate("beta", beta))
    obs = D != MISSING
    n00 = np.sum(obs & (A == 0) & (D == 0))
    n01 = np.sum(obs & (A == 0) & (D == 1))
    n10 = np.sum(obs & (A == 1) & (D == 0))
    n11 = np.sum(obs & (A == 1) & (D == 1))
    return float(n00 * l1a + n01 * la + n10 * lb + n11 * l1b)


def _greedy_tree(D: np.ndarray) -> np.ndarray:
    """Starting tree: columns by decreasing count of observed ones; each column's
    parent is the smallest earlier column holding at least half of its ones (a
    false-negative-tolerant containment), else the root."""
    n, m = D.shape
    B = (D == 1).astype(np.float64)
    count = B.sum(axis=0)
    overlap = B.T @ B
    order = np.argsort(-count, kind="stable")
    parent = np.full(m, m, dtype=np.int64)
    for t, j in enumerate(order):
        best = m
        best_count = np.inf
        for k in order[:t]:
            if count[j] > 0 and overlap[j, k] >= 0.5 * count[j] and count[k] < best_count:
                best, best_count = k, count[k]
        parent[j] = best
    return parent


def _seed_int(seed) -> int:
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(2**31 - 1))
    if seed is None:
        return int(np.random.default_rng().integers(2**31 - 1))
    return int(seed) % (2**31 - 1)


def _build(D, parent, alpha, beta, linear=False) -> Solution:
    la, l1a, lb, l1b = _logs(alpha, beta)
    base, deltaT = _k.score_tables(D, la, l1a, lb, l1b)
    n = parent.size
    acc = np.empty((n + 1, D.shape[0]))
    order, _, size = _k.preorder(parent)
    _k.path_sums(deltaT, parent, order, acc)
    attachment = _k.best_attachment(acc)
    A = tree_matrix(parent, attachment)
    obs = D != MISSING
    fp = int(np.sum(obs & (D == 1) & (A == 0)))
    fn = int(np.sum(obs & (D == 0) & (A == 1)))
    return Solution(A, parent, attachment, log_likelihood(D, A, alpha, beta), alpha, beta,
                    fp + fn, fp, fn, linear)


def _solve_fixed(D, alpha, beta, method, restarts, kicks, seed_int) -> Solution:
    la, l1a, lb, l1b = _logs(alpha, beta)
    base, deltaT = _k.score_tables(D, la, l1a, lb, l1b)
    n = D.shape[1]
    if method == "exact":
        if n > EXACT_MAX_MUTATIONS:
            raise PhyloError(f"method='exact' enumerates (n+1)^(n-1) trees; at most "
                             f"{EXACT_MAX_MUTATIONS} mutations, got {n}")
        parent, _ = _k.exhaustive_tree(deltaT)
    else:
        init = _greedy_tree(D)
        parent, _ = _k.search_tree(deltaT, init, seed_int, restarts, kicks,
                                   _KICK_SIZE, max(1, n // 10), _MAX_ROUNDS)
    return _build(D, parent, alpha, beta)


def default_effort(n_cells: int, n_mutations: int) -> tuple[int, int]:
    """(restarts, kicks) for :func:`solve`: one sweep of moves costs about
    mutations² · cells operations; tiny problems get 3 restarts, up to 100 × 100
    two, larger ones one, each of up to 20 perturbations (fewer when a sweep is
    expensive) so that 100 × 100 takes about a second and 500 × 200 seconds."""
    work = n_mutations * n_mutations * max(n_cells, 1)
    restarts = 3 if work <= 100_000 else (2 if work <= 2_000_000 else 1)
    kicks = int(min(20, max(4, 1e8 / max(work, 1))))
    return restarts, min(kicks, 2 * n_mutations)


def estimate_rates(D: np.ndarray, A: np.ndarray) -> tuple[float, float]:
    """(α, β) as the corrected-entry frequencies given a true matrix, with a
    half-count prior, clipped to [RATE_FLOOR, 0.5)."""
    obs = D != MISSING
    zeros = np.sum(obs & (A == 0))
    ones = np.sum(obs & (A == 1))
    fp = np.sum(obs & (A == 0) & (D == 1))
    fn = np.sum(obs & (A == 1) & (D == 0))
    alpha = (fp + 0.5) / (zeros + 1.0)
    beta = (fn + 0.5) / (ones + 1.0)
    clip = lambda x: float(min(max(x, RATE_FLOOR), 0.499))  # noqa: E731
    return clip(alpha), clip(beta)


def solve(observed, *, alpha: float | None = None, beta: float | None = None,
          method: str = "search", restarts: int | None = None, kicks: int | None = None,
          max_em_iterations: int = 10, seed=None) -> Solution:
    """Maximum-likelihood conflict-free matrix of ``observed`` (int8[cells,
    mutations], 0/1/3 = missing) with its mutation tree.

    ``alpha``/``beta``: false-positive / false-negative rates; when either is None
    both unknown ones are estimated by alternating a solve and
    :func:`estimate_rates` (EM-like, at most ``max_em_iterations`` rounds).
    ``method``: 'search' (iterated local search, ``restarts`` seeded restarts of
    ``kicks`` perturbations each; defaults scale with the work of one sweep,
    see :func:`default_effort`) or 'exact' (all mutation trees, ≤ 8
    mutations) or 'auto' (exact when ≤ 6 mutations).
    """
    D = _validate_observed(observed)
    if method not in ("search", "exact", "auto"):
        raise PhyloError(f"unknown method {method!r}; expected search, exact or auto")
    if method == "auto":
        method = "exact" if D.shape[1] <= 6 else "search"
    r0, k0 = default_effort(*D.shape)
    restarts = r0 if restarts is None else int(restarts)
    kicks = k0 if kicks is None else int(kicks)
    if restarts < 1 or kicks < 0:
        raise PhyloError(f"need restarts >= 1 and kicks >= 0, got {restarts} and {kicks}")
    seed_int = _seed_int(seed)
    if alpha is not None and beta is not None:
        return _solve_fixed(D, _validate_rate("alpha", alpha), _validate_rate("beta", beta),
                            method, restarts, kicks, seed_int)
    a = 0.01 if alpha is None else _validate_rate("alpha", alpha)
    b = 0.1 if beta is None else _validate_rate("beta", beta)
    sol = None
    for it in range(max_em_iterations):
        sol = _solve_fixed(D, a, b, method, 1, kicks // 2, seed_int + it)
        ea, eb = estimate_rates(D, sol.matrix)
        na = a if alpha is not None else ea
        nb = b if beta is not None else eb
        if abs(math.log(na / a)) < 0.05 and abs(math.log(nb / b)) < 0.05:
            a, b = na, nb
            break
        a, b = na, nb
    return _solve_fixed(D, a, b, method, restarts, kicks, seed_int)


def solve_linear(observed, *, alpha: float, beta: float, restarts: int = 4,
                 kicks: int | None = None, seed=None) -> Solution:
    """ML matrix whose mutation tree is a chain (columns nested): insertion
    local search over mutation orders with seeded restarts."""
    D = _validate_observed(observed)
    alpha = _validate_rate("alpha", alpha)
    beta = _validate_rate("beta", beta)
    la, l1a, lb, l1b = _logs(alpha, beta)
    base, deltaT = _k.score_tables(D, la, l1a, lb, l1b)
    n = D.shape[1]
    kicks = min(n, 30) if kicks is None else int(kicks)
    init = np.argsort(-(D == 1).sum(axis=0), kind="stable").astype(np.int64)
    order, _ = _k.search_chain(deltaT, init, _seed_int(seed), restarts, kicks, _MAX_ROUNDS)
    parent = np.empty(n, dtype=np.int64)
    parent[order[0]] = n
    parent[order[1:]] = order[:-1]
    return _build(D, parent, alpha, beta, linear=True)


def tree_newick(parent: np.ndarray, mutations: list[str] | None = None, *,
                root: str = "root") -> str:
    """Newick string of a mutation tree (root = len(parent)), labels on nodes."""
    parent = np.asarray(parent)
    n = parent.size
    names = list(mutations) if mutations is not None else [f"mut{j + 1}" for j in range(n)]
    kids: list[list[int]] = [[] for _ in range(n + 1)]
    for v in range(n):
        kids[int(parent[v])].append(v)

    def label(s: str) -> str:
        return s if all(ch not in s for ch in " ,;:()[]'") else "'" + s.replace("'", "''") + "'"

    out: list[str] = []
    stack: list[tuple[int, bool]] = [(n, False)]
    while stack:  # iterative: chains of 10^3 mutations exceed the recursion limit
        v, closing = stack.pop()
        if v < 0:
            out.append(",")
            continue
        name = root if v == n else names[v]
        if closing:
            out.append(")" + label(name))
        elif kids[v]:
            out.append("(")
            stack.append((v, True))
            for i, c in enumerate(reversed(kids[v])):
                if i > 0:
                    stack.append((-1, False))
                stack.append((c, False))
        else:
            out.append(label(name))
    return "".join(out) + ";"
