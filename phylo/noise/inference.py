"""Noise elimination: the maximum-likelihood conflict-free matrix.

Noise model (Jahn et al. 2016, SCITE; Malikic et al. 2019, PhISCS; the
general binary/ternary, per-cell/per-mutation form is in
:mod:`phylo.noise.model`): every observed entry A′[c, j] is independent given
the true A[c, j]; a true 0 reads 1 with probability α (false positive), a true
1 reads 0 with probability β (false negative); missing entries contribute
nothing. In the binary model the log-likelihood (natural log) of a true
matrix A is

    Σ_{A′=0, A=0} log(1−α) + Σ_{A′=1, A=0} log α + Σ_{A′=0, A=1} log β + Σ_{A′=1, A=1} log(1−β).

Every conflict-free matrix is the matrix of a mutation tree (mutations are the
nodes, a cell attached at v carries the mutations on the root→v path; cells may
attach to the root; identical columns are chains, an empty column is a mutation
no cell attaches below), and conversely, so the ML conflict-free matrix is the
ML over (mutation tree, attachments). For a fixed tree the best attachment of
every cell follows from one pre-order accumulation of per-entry score
differences (O(cells · mutations)). :func:`solve` searches trees as an
iterated local search with seeded restarts (each from its own seed and a
random recursive tree, basin hopping between local optima), run until the
best log-likelihood has been reached by several independent restarts
(:data:`CONFIRMATIONS`). The hill climb (:mod:`phylo._kernels.noise_search`)
alternates two views of the same optimum: the mutation tree, with SCITE's
moves (prune-and-reattach, the best position of a subtree found for all
positions in one pass; node relocation; label swaps) plus block moves of
chain segments; and the transposed view, a binary tree over the cells with
every mutation on its best clade (SCITE's ``-transpose`` space), where moving
a clade of cells moves every mutation between two attachment depths at once.
Perturbations are random subtree moves in either view. On SCITE's Hou78 data
the mutation-tree moves alone left restarts on local optima that differ only
in the order of a 68-mutation chain; the cell moves reach the best tree from
them. :func:`solve` with ``method='exact'`` enumerates every mutation tree
(n ≤ 8) instead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._kernels import noise as _k
from .._kernels import noise_search as _ks
from ..errors import GenotypeError, PhyloError
from .io import MISSING
from .model import ErrorModel, entry_log_likelihood, log_tables
from .simulate import tree_matrix

#: largest number of mutations for which ``method='exact'`` enumerates trees
EXACT_MAX_MUTATIONS = 8
#: rates are kept inside [RATE_FLOOR, 0.5) when estimated
RATE_FLOOR = 1e-6
#: two restarts reach "the same" optimum when their log-likelihoods differ by
#: less than this (sums of thousands of logs differ by round-off, ~1e-10)
HIT_TOL = 1e-6
#: default number of independent restarts that must reach the best
#: log-likelihood before the search stops
CONFIRMATIONS = 3
#: basin hopping: a perturbed local optimum worse by d log-likelihood units is
#: accepted with probability exp(-d / BASIN_TEMPERATURE) (lets a restart cross
#: the ridges of flat landscapes such as SCITE's Hou78 data)
BASIN_TEMPERATURE = 2.0
#: longest chain segment moved as a block by the local search (Or-opt moves;
#: see :mod:`phylo._kernels.noise_search`)
SEGMENT_MAX = 8
#: the extra neighbourhoods are used while their sweep stays cheap: segment
#: moves cost about SEGMENT_MAX · mutations² · cells per sweep, cell-tree
#: moves (2 · cells)² · mutations; above these (e.g. 10^4 cells × 200
#: mutations) the search keeps SCITE's moves only, whose sweep is
#: mutations² · cells
SEGMENT_WORK_MAX = 5e7
CELL_TREE_WORK_MAX = 5e7
_KICK_CAP = 20     # a restart makes at most _KICK_CAP * patience perturbations
_GROWTH = 3        # restarts grow to at most 2^_GROWTH times the initial patience
_MAX_ROUNDS = 1000  # local search stops earlier, at a local optimum
_KICK_SIZE = 3     # random subtree moves per perturbation


@dataclass(frozen=True)
class Solution:
    """An inferred conflict-free matrix and its mutation tree.

    ``matrix``: int8[cells, mutations] (0/1); ``parent``: int64[mutations] (value
    ``mutations`` = root); ``attachment``: int64[cells] (``mutations`` = root);
    ``log_likelihood``: natural log under ``model`` (−inf if the matrix makes
    an observation impossible, possible only with a zero rate); ``flips``:
    observed (non-missing) entries whose mutated/unmutated state differs from
    ``matrix`` (an observed 2 counts as mutated); ``false_positives`` /
    ``false_negatives``: observed mutated → 0 and observed 0 → 1 corrections.
    ``alpha``/``beta`` are the model's false-positive/negative rates (floats
    for scalar models, else None). ``restarts``: independent restarts run;
    ``hits``: how many of them reached the reported log-likelihood (within
    :data:`HIT_TOL`, relative); ``converged``: hits reached the requested
    confirmations; ``restart_log_likelihoods``: the best log-likelihood of
    every restart, in the order run (empty for ``method='exact'``)."""

    matrix: np.ndarray
    parent: np.ndarray
    attachment: np.ndarray
    log_likelihood: float
    alpha: float | None
    beta: float | None
    flips: int
    false_positives: int
    false_negatives: int
    linear: bool = False
    model: ErrorModel | None = None
    restarts: int = 1
    hits: int = 1
    converged: bool = True
    restart_log_likelihoods: tuple[float, ...] = ()

    def newick(self, mutations: list[str] | None = None, root: str = "root") -> str:
        """The mutation tree in Newick (mutation names as node labels)."""
        return tree_newick(self.parent, mutations, root=root)


def _validate_observed(D) -> np.ndarray:
    """Validated observed matrix: int8[cells, mutations] with 0, 1, 2
    (homozygous mutant call) and 3 (missing), not entirely missing."""
    D = np.asarray(D)
    if D.ndim != 2 or D.shape[0] == 0 or D.shape[1] == 0:
        raise GenotypeError(f"genotype matrix must be non-empty cells × mutations, "
                            f"got shape {D.shape}")
    if not np.isin(D, (0, 1, 2, MISSING)).all():
        raise GenotypeError("genotype entries must be 0, 1, 2 (homozygous) or 3 (missing)")
    if np.all(D == MISSING):
        raise GenotypeError("every entry is missing: nothing to infer")
    return np.ascontiguousarray(D, dtype=np.int8)


def _validate_rate(name: str, value: float) -> float:
    value = float(value)
    if not (0.0 < value < 1.0) or math.isnan(value):
        raise PhyloError(f"{name} must be strictly between 0 and 1, got {value}")
    return value


def check_seed(seed: int | None) -> int:
    """A non-negative int seed (None: a fresh one from the OS), as used by
    every stochastic routine in :mod:`phylo.noise`."""
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1)[0] >> 1)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise PhyloError(f"seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise PhyloError(f"seed must be >= 0, got {seed}")
    return int(seed)


def _child_seeds(seed: int, n: int) -> list[int]:
    """n independent 31-bit kernel seeds derived from one seed (numpy's
    SeedSequence), so that restart k's seed does not depend on how many
    restarts run."""
    return [int(x) for x in np.random.SeedSequence(seed).generate_state(n) % (2**31 - 1)]


def _model(alpha, beta, hom, cc, model) -> ErrorModel | None:
    """The fixed error model, or None when rates are to be estimated."""
    if model is not None:
        if any(x is not None for x in (alpha, beta, hom, cc)):
            raise PhyloError("pass either model= or the separate rates, not both")
        return model
    if alpha is None or beta is None:
        return None
    ternary = hom is not None or cc is not None
    return ErrorModel(alpha, beta, 0.0 if hom is None else hom, 0.0 if cc is None else cc,
                      ternary=ternary)


def log_likelihood(observed, true, alpha: float | None = None, beta: float | None = None, *,
                   model: ErrorModel | None = None) -> float:
    """log P(observed | true) (natural log) under ``model`` or the binary model
    with rates (α, β); −inf when an observation is impossible."""
    D = _validate_observed(observed)
    A = np.asarray(true)
    if A.shape != D.shape:
        raise GenotypeError(f"shapes differ: observed {D.shape}, true {A.shape}")
    if not np.isin(A, (0, 1)).all():
        raise GenotypeError("the true matrix must hold 0 and 1 only")
    m = _model(alpha, beta, None, None, model)
    if m is None:
        raise PhyloError("log_likelihood needs the rates (alpha and beta, or model=)")
    return entry_log_likelihood(D, A, m)


def _validate_parent(parent, n: int) -> np.ndarray:
    """A mutation tree over n mutations: int64[n], values 0..n (n = root), no cycle."""
    p = np.asarray(parent)
    if p.shape != (n,) or not np.issubdtype(p.dtype, np.integer):
        raise PhyloError(f"parent must be an integer array of {n} entries (one per "
                         f"mutation), got shape {p.shape} and dtype {p.dtype}")
    p = p.astype(np.int64)
    if n and (p.min() < 0 or p.max() > n or np.any(p == np.arange(n))):
        raise PhyloError(f"parent entries must lie in 0..{n} ({n} = root) and differ "
                         "from the node itself")
    if _k.preorder(p)[2][0] < 0:
        raise PhyloError("parent array has a cycle: not a tree rooted at the normal genome")
    return p


def tree_log_likelihood(observed, parent, alpha: float | None = None,
                        beta: float | None = None, *, model: ErrorModel | None = None
                        ) -> float:
    """Log-likelihood (natural log) of a fixed mutation tree ``parent``
    (int[mutations], value ``mutations`` = root) with every cell at its best
    attachment (the root included): SCITE's ML tree score, so a tree from
    another program can be scored under our model. Rates as in :func:`solve`."""
    D = _validate_observed(observed)
    p = _validate_parent(parent, D.shape[1])
    m = _model(alpha, beta, None, None, model)
    if m is None:
        raise PhyloError("tree_log_likelihood needs the rates (alpha and beta, or model=)")
    m.probabilities(*D.shape)
    _, deltaT = _tables(D, m)
    acc = np.empty((p.size + 1, D.shape[0]))
    order, _, _ = _k.preorder(p)
    _k.path_sums(deltaT, p, order, acc)
    return entry_log_likelihood(D, tree_matrix(p, _k.best_attachment(acc)), m)


def _greedy_tree(D: np.ndarray) -> np.ndarray:
    """Starting tree: columns by decreasing count of observed mutated calls;
    each column's parent is the smallest earlier column holding at least half
    of its calls (a false-negative-tolerant containment), else the root."""
    n, m = D.shape
    B = ((D == 1) | (D == 2)).astype(np.float64)
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


def _tables(D, model: ErrorModel):
    logs, _ = log_tables(D, model)
    return _k.score_tables(D, logs)


def _build(D, parent, model: ErrorModel, deltaT, *, linear=False, restarts=1, hits=1,
           converged=True, restart_scores=()) -> Solution:
    n = parent.size
    acc = np.empty((n + 1, D.shape[0]))
    order, _, size = _k.preorder(parent)
    _k.path_sums(deltaT, parent, order, acc)
    attachment = _k.best_attachment(acc)
    A = tree_matrix(parent, attachment)
    obs = D != MISSING
    mutated = (D == 1) | (D == 2)
    fp = int(np.sum(obs & mutated & (A == 0)))
    fn = int(np.sum(obs & (D == 0) & (A == 1)))
    scalar = model.scalar
    ll = entry_log_likelihood(D, A, model)
    if ll == -math.inf:
        raise PhyloError("no conflict-free matrix explains these data with the given "
                         "rates: some observations have probability 0 under every tree "
                         "(e.g. --fp 0 and --fn 0 on a matrix with conflicts)")
    return Solution(A, parent, attachment, ll,
                    float(model.fp) if scalar else None, float(model.fn) if scalar else None,
                    fp + fn, fp, fn, linear, model, restarts, hits, converged,
                    tuple(restart_scores))


def _random_start(n: int, seed: int) -> np.ndarray:
    """Random recursive mutation tree (parent of j uniform over 0..j-1 and the
    root) with the labels shuffled."""
    rng = np.random.default_rng(seed)
    label = rng.permutation(n)
    parent = np.empty(n, dtype=np.int64)
    for j in range(n):
        r = int(rng.integers(j + 1))
        parent[label[j]] = n if r == j else label[r]
    return parent


@dataclass(frozen=True)
class _Effort:
    kicks: int
    min_restarts: int
    max_restarts: int
    confirmations: int


def _search(D, model: ErrorModel, method: str, effort: _Effort, seed: int,
            progress=None) -> Solution:
    """Independent seeded restarts of the iterated local search until the best
    score has been reached by ``confirmations`` restarts and at least as many
    restarts have run after the one that first found it as before it (or the
    budget ``max_restarts`` is spent).

    The second condition is a doubling rule against sticky local optima: a
    value found early and confirmed by cheap restarts (Navin: the first
    restarts end at −458.33 almost always, the optimum −457.91 appears once
    the patience has grown) is only accepted after the search has spent as
    much again looking for something better."""
    base, deltaT = _tables(D, model)
    n = D.shape[1]
    if method == "exact":
        if n > EXACT_MAX_MUTATIONS:
            raise PhyloError(f"method='exact' enumerates (n+1)^(n-1) trees; at most "
                             f"{EXACT_MAX_MUTATIONS} mutations, got {n}")
        parent, _ = _k.exhaustive_tree(deltaT)
        return _build(D, parent, model, deltaT)
    init = _greedy_tree(D)
    seeds = _child_seeds(seed, effort.max_restarts)
    best_parent, best, hits, runs, found_at = init, -math.inf, 0, 0, 0
    scores: list[float] = []
    total_base = float(base.sum())
    swaps = max(1, n // 10)
    c = D.shape[0]
    max_len = SEGMENT_MAX if SEGMENT_MAX * n * n * c <= SEGMENT_WORK_MAX else 0
    cells = 4.0 * c * c * n <= CELL_TREE_WORK_MAX
    for r in range(effort.max_restarts):
        # restart 0 climbs from the greedy tree, later ones from random
        # recursive trees: starts near the greedy tree fell into its basin
        # (Navin: three restarts agreed on a local optimum)
        # unconfirmed optima on rugged landscapes need longer restarts: the
        # patience doubles after every `confirmations` restarts (up to 2^_GROWTH)
        patience = effort.kicks * 2 ** min(r // effort.confirmations, _GROWTH)
        start = init if r == 0 else _random_start(n, seeds[r])
        parent, score = _ks.search_both(deltaT, start, seeds[r], patience,
                                        _KICK_CAP * patience, _KICK_SIZE, swaps, _MAX_ROUNDS,
                                        BASIN_TEMPERATURE, max_len, cells)
        runs += 1
        scores.append(float(score + total_base))
        tol = HIT_TOL * max(1.0, abs(score))
        if r == 0 or score > best + tol:
            best, best_parent, hits, found_at = score, parent, 1, runs
        elif score >= best - tol:
            hits += 1
        if progress is not None:
            progress(runs, hits, float(best + base.sum()))
        if (runs >= effort.min_restarts and hits >= effort.confirmations
                and runs >= 2 * found_at - 1):
            break
    return _build(D, best_parent, model, deltaT, restarts=runs, hits=hits,
                  converged=hits >= effort.confirmations, restart_scores=scores)


def default_effort(n_cells: int, n_mutations: int) -> tuple[int, int, int]:
    """(min_restarts, max_restarts, kicks) for :func:`solve`: one sweep of
    moves costs about mutations² · cells operations; a restart's initial
    patience is 20 perturbations (fewer when a sweep is expensive). Cheap
    problems run at least 10 restarts whatever the confirmations (a sticky
    local optimum can be confirmed by three restarts: Navin, where one restart
    in four finds the optimum), and the restart budget shrinks with the work."""
    work = n_mutations * n_mutations * max(n_cells, 1)
    kicks = int(min(20, max(4, 1e8 / max(work, 1))))
    min_restarts = int(min(10, 2_000_000 // max(work, 1)))
    max_restarts = 24 if work <= 2_000_000 else (12 if work <= 50_000_000 else 6)
    return min_restarts, max_restarts, min(kicks, 2 * n_mutations)


def estimate_rates(D: np.ndarray, A: np.ndarray) -> tuple[float, float]:
    """(α, β) as the corrected-entry frequencies given a true matrix, with a
    half-count prior, clipped to [RATE_FLOOR, 0.5). An observed 2 counts as
    an observed mutation."""
    obs = D != MISSING
    mutated = (D == 1) | (D == 2)
    zeros = np.sum(obs & (A == 0))
    ones = np.sum(obs & (A == 1))
    fp = np.sum(obs & (A == 0) & mutated)
    fn = np.sum(obs & (A == 1) & (D == 0))
    alpha = (fp + 0.5) / (zeros + 1.0)
    beta = (fn + 0.5) / (ones + 1.0)
    clip = lambda x: float(min(max(x, RATE_FLOOR), 0.499))  # noqa: E731
    return clip(alpha), clip(beta)


def solve(observed, *, alpha: float | None = None, beta: float | None = None,
          hom: float | None = None, cc: float | None = None,
          model: ErrorModel | None = None, method: str = "search",
          restarts: int | None = None, kicks: int | None = None,
          confirmations: int = CONFIRMATIONS, max_restarts: int | None = None,
          max_em_iterations: int = 10, seed: int | None = None,
          progress=None) -> Solution:
    """Maximum-likelihood conflict-free matrix of ``observed`` (int8[cells,
    mutations]: 0, 1, 2 = homozygous call, 3 = missing) with its mutation tree.

    Error model (:mod:`phylo.noise.model`): ``alpha`` = α (false positive,
    SCITE's ``-fd``), ``beta`` = β (false negative / dropout, SCITE's first
    ``-ad``), ``hom`` and ``cc`` (SCITE's second ``-ad`` and ``-cc``: giving
    either selects the ternary model), each a float in [0, 1) or one rate per
    cell or per mutation; or a prepared ``model``. Rates of 0 are exact (see
    :func:`phylo.noise.model.log_tables`). When α or β is None the unknown
    ones (scalars) are estimated by alternating a solve and
    :func:`estimate_rates` (EM-like, at most ``max_em_iterations`` rounds).

    ``method``: 'search' (iterated local search with independent seeded
    restarts), 'exact' (all mutation trees, ≤ 8 mutations) or 'auto' (exact
    when ≤ 6 mutations). Effort: with ``restarts`` given, exactly that many
    restarts; by default the restarts continue until ``confirmations``
    independent restarts have reached the best log-likelihood, at least as
    many restarts have run after the one that first found it as before it
    (a doubling rule against sticky local optima) and at least the minimum of
    :func:`default_effort` have run, or ``max_restarts``
    (default by size, :func:`default_effort`) are spent;
    :attr:`Solution.hits` and :attr:`Solution.converged` report which.
    ``kicks``: patience of a restart (it stops after this many perturbations
    in a row without a new best). ``seed``: int (the same seed gives
    the same answer). ``progress(restarts, hits, best_log_likelihood)`` is
    called after every restart.
    """
    D = _validate_observed(observed)
    seed = check_seed(seed)
    if method not in ("search", "exact", "auto"):
        raise PhyloError(f"unknown method {method!r}; expected search, exact or auto")
    if method == "auto":
        method = "exact" if D.shape[1] <= 6 else "search"
    rmin, r0, k0 = default_effort(*D.shape)
    kicks = k0 if kicks is None else int(kicks)
    if int(confirmations) < 1:
        raise PhyloError(f"confirmations must be >= 1, got {confirmations}")
    if restarts is not None:
        if int(restarts) < 1:
            raise PhyloError(f"restarts must be >= 1, got {restarts}")
        effort = _Effort(kicks, int(restarts), int(restarts),
                         min(int(confirmations), int(restarts)))
    else:
        budget = r0 if max_restarts is None else int(max_restarts)
        if budget < 1:
            raise PhyloError(f"max_restarts must be >= 1, got {max_restarts}")
        effort = _Effort(kicks, min(max(int(confirmations), rmin), budget), budget,
                         int(confirmations))
    if kicks < 0:
        raise PhyloError(f"kicks must be >= 0, got {kicks}")
    fixed = _model(alpha, beta, hom, cc, model)
    if fixed is not None:
        fixed.probabilities(*D.shape)  # validate before the work
        return _search(D, fixed, method, effort, seed, progress)
    ternary = hom is not None or cc is not None
    h = 0.0 if hom is None else hom
    c = 0.0 if cc is None else cc
    a = 0.01 if alpha is None else alpha
    b = 0.1 if beta is None else beta
    ErrorModel(a, b, h, c, ternary=ternary).probabilities(*D.shape)
    quick = _Effort(max(1, kicks // 2), 1, 1, 1)
    em_seeds = _child_seeds(seed + 1, max_em_iterations)
    for it in range(max_em_iterations):
        sol = _search(D, ErrorModel(a, b, h, c, ternary=ternary), method, quick, em_seeds[it])
        ea, eb = estimate_rates(D, sol.matrix)
        na = a if alpha is not None else ea
        nb = b if beta is not None else eb
        done = abs(math.log(na / a)) < 0.05 and abs(math.log(nb / b)) < 0.05
        a, b = na, nb
        if done:
            break
    return _search(D, ErrorModel(a, b, h, c, ternary=ternary), method, effort, seed, progress)


def solve_linear(observed, *, alpha: float, beta: float, restarts: int = 4,
                 kicks: int | None = None, seed: int | None = None) -> Solution:
    """ML matrix whose mutation tree is a chain (columns nested): insertion
    local search over mutation orders with seeded restarts (binary model)."""
    D = _validate_observed(observed)
    model = ErrorModel(_validate_rate("alpha", alpha), _validate_rate("beta", beta))
    base, deltaT = _tables(D, model)
    n = D.shape[1]
    kicks = min(n, 30) if kicks is None else int(kicks)
    init = np.argsort(-((D == 1) | (D == 2)).sum(axis=0), kind="stable").astype(np.int64)
    kseed = _child_seeds(check_seed(seed), 1)[0]
    order, _ = _k.search_chain(deltaT, init, kseed, restarts, kicks, _MAX_ROUNDS)
    parent = np.empty(n, dtype=np.int64)
    parent[order[0]] = n
    parent[order[1:]] = order[:-1]
    return _build(D, parent, model, deltaT, linear=True)


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
