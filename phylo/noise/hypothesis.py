"""Noise inference and branching inference: Bayesian classifiers and bootstrap tests.

The two classification tasks of Sadeqi Azer et al. (2020, iScience 23:101655),
answered without a trained network, in two ways:

**Posterior probabilities** (:func:`noise_probability`, :func:`branching_probability`,
returning a :class:`Classification`): Bayes' rule under a stated generative prior —
a mutation tree uniform over rooted labelled trees (SCITE's prior; for branching,
uniform over chains or over branching trees), cells attached to uniform nodes,
entries flipped at rates α (0→1) and β (1→0). The marginal likelihood of each class
sums over trees and attachments: exactly by enumerating every tree for up to
:data:`EXACT_MAX_MUTATIONS` mutations, by Metropolis–Hastings sampling above. On
matrices drawn from that prior the probabilities are calibrated and the decision
p > 1/2 is Bayes-optimal (``benchmarks/noise_calibration.py`` measures both).

- noise inference: was D observed through noise, or is it the noise-free matrix
  of a perfect phylogeny? A three-gametes conflict settles it (noisy); otherwise
  the two marginal likelihoods are compared.
- branching inference: is the mutation tree a chain (columns nested) or branching?
- infinite sites (:func:`parallel_mutation_probability`, the question of
  :func:`noise_test`): is the *true* matrix conflict-free, or did one mutation
  arise twice? A reversible-jump chain over the two tree spaces.

**Parametric-bootstrap tests** (:func:`noise_test`, :func:`branching_test`,
returning a :class:`TestResult` with a p-value; they need no prior):

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

import math
from dataclasses import dataclass

import numpy as np

from .._kernels import noise as _k
from .._kernels import noise_bayes as _kb
from ..errors import PhyloError
from .inference import (Solution, _child_seeds, _validate_observed, check_seed, solve,
                        solve_linear)
from .checks import perfect_phylogeny
from .io import MISSING
from .posterior import P_PRUNE
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


# --------------------------------------------------------------------------
# Bayesian classifiers: posterior probabilities under a stated generative prior
# --------------------------------------------------------------------------

#: trees are enumerated exactly up to this many mutations ((n + 1)^(n − 1)
#: trees: 262,144 at 7, 4.8 million at 8); above it the posterior is sampled
EXACT_MAX_MUTATIONS = 7
#: zero error rates make the likelihood an indicator; the branching posterior
#: is evaluated at this floor instead, whose effect on a probability is below
#: cells × mutations × 1e-9 (the zero-rate posterior is its limit)
RATE_FLOOR = 1e-9
#: kept trees per chain when ``iterations`` is not given
_KEEP = 1000
#: chains whose probabilities differ by more than this have not mixed between
#: the two classes (the sampled share is then meaningless); the probability is
#: then taken from the best tree reached in each class (method 'mcmc-modes')
MIX_TOL = 0.5
#: shares of class switches and of new-j proposals in the parallel-mutation chain
PARALLEL_SWITCH = 0.2
PARALLEL_RELABEL = 0.1


@dataclass(frozen=True)
class Classification:
    """Posterior probability of ``hypothesis`` ('noisy' or 'branching').

    ``probability``: P(hypothesis | D) under the generative prior (see
    :func:`noise_probability`, :func:`branching_probability`); ``prior``: its
    prior probability; ``log_bayes_factor``: natural log of P(D | hypothesis)
    / P(D | alternative) (±inf when the data rule one out); ``method``:
    'exact' (every mutation tree enumerated), 'mcmc' (sampled; ``mc_error`` is
    the standard error of ``probability`` across chains), 'mcmc-modes' (the
    chains did not mix between the classes — large matrices — and the
    probability compares the best tree reached in each class, weighted by the
    class's prior per tree: an approximation that ignores how wide each
    class's posterior mode is, sound when the heights differ by far more than
    the widths, and reported with the chains' disagreement in ``mc_error``),
    'conflict' (the
    three-gametes test decides: a noise-free matrix has no conflict) or
    'identical' (α = β = 0: the two classes generate the same matrices)."""

    hypothesis: str
    probability: float
    prior: float
    log_bayes_factor: float
    method: str
    alpha: float
    beta: float
    mc_error: float = 0.0
    n_trees: int = 0

    @property
    def decision(self) -> bool:
        """The Bayes decision under 0–1 loss: ``probability > 0.5``."""
        return self.probability > 0.5

    def as_dict(self) -> dict:
        return {"hypothesis": self.hypothesis, "probability": self.probability,
                "prior": self.prior, "log_bayes_factor": self.log_bayes_factor,
                "method": self.method, "alpha": self.alpha, "beta": self.beta,
                "mc_error": self.mc_error, "n_trees": self.n_trees}


def _check_prior(prior: float) -> float:
    prior = float(prior)
    if not (0.0 < prior < 1.0):
        raise PhyloError(f"prior probability must be strictly between 0 and 1, got {prior}")
    return prior


def _check_rates(alpha, beta) -> tuple[float, float]:
    if alpha is None or beta is None:
        raise PhyloError("the classifiers need the error rates alpha and beta")
    out = []
    for name, v in (("alpha", alpha), ("beta", beta)):
        v = float(v)
        if not (0.0 <= v < 0.5) or math.isnan(v):
            raise PhyloError(f"{name} must be in [0, 0.5), got {v}")
        out.append(v)
    return out[0], out[1]


def _posterior_from_lbf(lbf: float, prior: float) -> float:
    """P(H1 | D) from log P(D|H1)/P(D|H0) and P(H1), overflow-safe."""
    x = lbf + math.log(prior) - math.log1p(-prior)
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _logsumexp(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=float)
    if x.size == 0:
        return -math.inf
    mx = float(np.max(x))
    if mx == -math.inf:
        return -math.inf
    return mx + math.log(float(np.sum(np.exp(x - mx))))


def _tables_binary(D: np.ndarray, alpha: float, beta: float):
    """(base, deltaT, mis, ones) of the binary model (2 = mutated)."""
    base, deltaT = _k.binary_tables(D, alpha, beta)
    mutated = (D == 1) | (D == 2)
    zero = D == 0
    mis = np.ascontiguousarray((zero.astype(np.float64) - mutated).T)
    ones = mutated.sum(axis=1).astype(np.float64)
    return base, deltaT, mis, ones


def _log_counts(n: int) -> tuple[float, float]:
    """(log #trees, log #chains) on n mutations: (n + 1)^(n − 1) and n!."""
    return (n - 1) * math.log(n + 1), math.lgamma(n + 1)


def _method(method: str, n: int) -> str:
    if method not in ("auto", "exact", "mcmc"):
        raise PhyloError(f"method must be 'auto', 'exact' or 'mcmc', got {method!r}")
    if method == "auto":
        return "exact" if n <= EXACT_MAX_MUTATIONS else "mcmc"
    if method == "exact" and n > EXACT_MAX_MUTATIONS:
        raise PhyloError(f"exact enumeration is limited to {EXACT_MAX_MUTATIONS} mutations "
                         f"({n} given); use method='mcmc'")
    return method


@dataclass(frozen=True)
class _ChainSettings:
    """Validated settings of the classifiers' seeded chains: ``chains`` ≥ 2 chains of
    ``iterations`` steps, the first ``burn_in`` dropped, every ``thin``-th kept
    (about :data:`_KEEP` per chain)."""

    chains: int
    iterations: int
    burn_in: int
    thin: int


def _chain_settings(chains, iterations, burn_in, default_iterations: int) -> _ChainSettings:
    """Settings from the user's values (None: ``default_iterations``, a quarter
    burn-in); a :class:`PhyloError` for fewer than 2 chains or 4 kept iterations."""
    chains = int(chains)
    if chains < 2:
        raise PhyloError(f"need at least 2 chains, got {chains}")
    iterations = int(iterations) if iterations is not None else default_iterations
    burn_in = iterations // 4 if burn_in is None else int(burn_in)
    if burn_in < 0 or iterations - burn_in < 4:
        raise PhyloError(f"need 0 <= burn_in and at least 4 kept iterations "
                         f"(iterations {iterations}, burn_in {burn_in})")
    return _ChainSettings(chains, iterations, burn_in, max(1, (iterations - burn_in) // _KEEP))


def _run_chains(D, alpha, beta, tables, chains, iterations, burn_in, chain_bonus, seed,
                extra_start=None):
    """Seeded chains of :func:`mcmc_trees_chain_prior` started in turn at the
    ML tree, the ML chain (so both branching classes are visited from the
    start) and ``extra_start`` when given (the noise classifier passes the
    perfect phylogeny of a conflict-free matrix, a tree of the noise-free class).
    Returns per-chain tuples (chain flags, l1, l0) and the same for the start
    trees."""
    _, deltaT, mis, ones = tables
    n = D.shape[1]
    cs = _chain_settings(chains, iterations, burn_in, max(20_000, 200 * n))
    chains, iterations, burn_in, thin = cs.chains, cs.iterations, cs.burn_in, cs.thin
    seeds = _child_seeds(seed, 2 + chains)
    a, b = max(alpha, RATE_FLOOR), max(beta, RATE_FLOOR)
    starts = [solve(D, alpha=a, beta=b, restarts=2, seed=seeds[0]).parent,
              solve_linear(D, alpha=a, beta=b, restarts=2, seed=seeds[1]).parent]
    if extra_start is not None:
        starts.insert(0, extra_start)
    out = []
    for ch in range(chains):
        start = np.ascontiguousarray(starts[ch % len(starts)], dtype=np.int64)
        _, flags, l1, l0, _ = _kb.mcmc_trees_chain_prior(
            deltaT, mis, ones, start, seeds[2 + ch], iterations, burn_in, thin,
            P_PRUNE, float(chain_bonus))
        out.append((flags, l1, l0))
    s_arr = np.ascontiguousarray(np.stack(starts), dtype=np.int64)
    s_l1, s_l0 = _kb.samples_terms(deltaT, mis, ones, s_arr)
    s_chain = np.array([_kb.is_chain(x) for x in s_arr])
    return out, (s_chain, s_l1, s_l0)


def noise_probability(observed, *, alpha: float, beta: float, prior: float = 0.5,
                      method: str = "auto", chains: int = 4, iterations: int | None = None,
                      burn_in: int | None = None, seed: int | None = None) -> Classification:
    """P(the matrix was observed through noise | D): the noise-inference task
    of Sadeqi Azer et al. (2020) as a Bayesian classifier.

    Generative prior: a mutation tree uniform over the (n + 1)^(n − 1) rooted
    labelled trees (SCITE's prior), each cell attached to a uniform node (root
    included), giving the conflict-free A; with probability ``prior`` the matrix
    is noisy (D = A with false positives at rate ``alpha`` and false negatives
    at ``beta``), else noise-free (D = A). Missing entries are uninformative
    under both. The posterior is

        P(noisy | D) = π Z1 / (π Z1 + (1 − π) Z0),

    Z1 and Z0 being the marginal likelihoods (sum over trees and attachments)
    of the two classes. A complete matrix with a three-gametes conflict is
    noisy with probability 1 ('conflict'); α = β = 0 makes the classes equal
    (probability = prior, 'identical'). Otherwise Z0 / Z1 is computed by
    enumerating every tree (``method='exact'``, ≤ :data:`EXACT_MAX_MUTATIONS`
    mutations) or estimated as E[exp(l0 − l1)] over trees sampled from the
    noisy-class posterior (``'mcmc'``; ``chains`` seeded chains of
    ``iterations`` steps, started in turn at the perfect phylogeny of D, the ML
    tree and the ML chain; the same seed gives the same answer). l0 − l1 is
    finite only on trees that explain D without noise; when the sampled
    posterior never visits them in some chain, or the chains disagree by more
    than :data:`MIX_TOL` (large matrices: 100 × 100 at β ≥ 0.05 puts almost no
    posterior mass there), the method is 'mcmc-modes' (see
    :class:`Classification`).
    """
    D = _validate_observed(observed)
    prior = _check_prior(prior)
    alpha, beta = _check_rates(alpha, beta)
    seed = check_seed(seed)
    n_cells, n = D.shape
    if alpha == 0.0 and beta == 0.0:
        return Classification("noisy", prior, prior, 0.0, "identical", alpha, beta)
    if alpha == 0.0 or beta == 0.0:
        raise PhyloError("noise_probability needs both rates positive (or both 0)")
    how = _method(method, n)
    pp = None
    if not (D == MISSING).any():
        pp = perfect_phylogeny(np.minimum(D, 1))
        if not pp.conflict_free:
            return Classification("noisy", 1.0, prior, math.inf, "conflict", alpha, beta)
    tables = _tables_binary(D, alpha, beta)
    sum_base = float(tables[0].sum())
    if how == "exact":
        l1, l0, _ = _kb.enumerate_trees(tables[1], tables[2], tables[3])
        lbf = sum_base + _logsumexp(l1) - _logsumexp(l0)
        return Classification("noisy", _posterior_from_lbf(lbf, prior), prior, lbf,
                              "exact", alpha, beta, 0.0, int(l1.size))
    runs, starts = _run_chains(D, alpha, beta, tables, chains, iterations, burn_in, 0.0,
                               seed, None if pp is None else pp.parent)
    kept = int(sum(r[1].size for r in runs))
    # Z0 / Z1 = exp(−Σ base) · E_post1[exp(l0 − l1)] (uniform prior for both)
    per_chain = np.array([_logsumexp(l0 - l1) - math.log(l1.size) for _, l1, l0 in runs])
    probs = np.array([_posterior_from_lbf(sum_base - r, prior) for r in per_chain])
    se = float(probs.std(ddof=1) / math.sqrt(len(runs)))
    unvisited = pp is not None and not np.all(np.isfinite(per_chain))
    if unvisited or np.ptp(probs) > MIX_TOL:
        # noise-free trees exist but some chain never reached them, or the
        # chains disagree: compare the best tree of each class (mode heights)
        l1_all = np.concatenate([r[1] for r in runs] + [starts[1]])
        l0_all = np.concatenate([r[2] for r in runs] + [starts[2]])
        lbf = sum_base + float(l1_all.max()) - float(l0_all.max())
        return Classification("noisy", _posterior_from_lbf(lbf, prior), prior, lbf,
                              "mcmc-modes", alpha, beta, se, kept)
    lbf = sum_base - (_logsumexp(per_chain) - math.log(len(runs)))
    return Classification("noisy", _posterior_from_lbf(lbf, prior), prior, lbf, "mcmc",
                          alpha, beta, se, kept)


def branching_probability(observed, *, alpha: float, beta: float, prior: float = 0.5,
                          method: str = "auto", chains: int = 4,
                          iterations: int | None = None, burn_in: int | None = None,
                          seed: int | None = None) -> Classification:
    """P(the mutation tree branches | D): the branching-inference task of
    Sadeqi Azer et al. (2020) as a Bayesian classifier.

    Generative prior: with probability ``prior`` the mutation tree is uniform
    over the branching rooted labelled trees, else uniform over the n! chains;
    cells attach to uniform nodes (root included); D is A observed with false
    positives at rate ``alpha`` and false negatives at ``beta`` (rates below
    :data:`RATE_FLOOR` are evaluated at the floor). With ``method='exact'``
    (≤ :data:`EXACT_MAX_MUTATIONS` mutations) every tree is enumerated;
    with ``'mcmc'`` trees are sampled under this two-class prior (the chain
    trees up-weighted by (1 − π)(N − n!) / (π n!) against SCITE's uniform
    prior) and the probability is the share of branching trees kept, with
    its standard error across chains in ``mc_error``; chains that stay in
    different classes give method 'mcmc-modes' (see :class:`Classification`)."""
    D = _validate_observed(observed)
    prior = _check_prior(prior)
    alpha, beta = _check_rates(alpha, beta)
    seed = check_seed(seed)
    n = D.shape[1]
    how = _method(method, n)
    if n == 1:   # the only tree is a chain
        return Classification("branching", 0.0, prior, -math.inf, "exact", alpha, beta, 0.0, 1)
    a, b = max(alpha, RATE_FLOOR), max(beta, RATE_FLOOR)
    tables = _tables_binary(D, a, b)
    log_n, log_c = _log_counts(n)
    log_branching = log_n + math.log1p(-math.exp(log_c - log_n))   # log(N − n!)
    if how == "exact":
        l1, _, chain = _kb.enumerate_trees(tables[1], tables[2], tables[3])
        lbf = (_logsumexp(l1[~chain]) - log_branching) - (_logsumexp(l1[chain]) - log_c)
        return Classification("branching", _posterior_from_lbf(lbf, prior), prior, lbf,
                              "exact", alpha, beta, 0.0, int(l1.size))
    bonus = math.log1p(-prior) - math.log(prior) + log_branching - log_c
    runs, starts = _run_chains(D, a, b, tables, chains, iterations, burn_in, bonus, seed)
    kept = int(sum(r[0].size for r in runs))
    shares = np.array([1.0 - float(flags.mean()) for flags, _, _ in runs])
    se = float(shares.std(ddof=1) / math.sqrt(len(runs)))
    if np.ptp(shares) > MIX_TOL:
        # the chains stayed in different classes: compare the best tree of
        # each class, weighted by the class's prior per tree (mode heights)
        chain = np.concatenate([r[0] for r in runs] + [starts[0]])
        l1 = np.concatenate([r[1] for r in runs] + [starts[1]])
        best_b = float(l1[~chain].max()) if (~chain).any() else -math.inf
        best_l = float(l1[chain].max()) if chain.any() else -math.inf
        lbf = (best_b - log_branching) - (best_l - log_c)
        return Classification("branching", _posterior_from_lbf(lbf, prior), prior, lbf,
                              "mcmc-modes", alpha, beta, se, kept)
    p = float(shares.mean())
    if 0.0 < p < 1.0:
        lbf = math.log(p) - math.log1p(-p) - (math.log(prior) - math.log1p(-prior))
    else:
        lbf = math.inf if p == 1.0 else -math.inf
    return Classification("branching", p, prior, lbf, "mcmc", alpha, beta, se, kept)


def _log_unrelated_trees(n: int) -> float:
    """log of the number of rooted labelled trees on n + 1 nodes (root apart)
    in which two given nodes are not on one root path: (n + 2)^n (1 − 2q), q
    the chance that one is a strict ancestor of the other. A path root → w1 … wk
    → b (k given intermediates, in order) lies in (k + 2) N^(N − k − 3) of the
    N^(N − 2) trees on N = n + 2 vertices (forests rooted at the path, the
    generalised Cayley formula), so
    q = Σ_k k (N − 3)! / (N − 2 − k)! (k + 2) N^(−k − 1)."""
    N = n + 2
    q = 0.0
    for k in range(1, N - 1):
        q += k * (k + 2) * math.exp(math.lgamma(N - 2) - math.lgamma(N - 1 - k)
                                    - (k + 1) * math.log(N))
    return n * math.log(N) + math.log1p(-2.0 * q)


def parallel_mutation_probability(observed, *, alpha: float, beta: float,
                                  prior: float = 0.5, chains: int = 4,
                                  iterations: int | None = None, burn_in: int | None = None,
                                  seed: int | None = None) -> Classification:
    """P(the true matrix breaks the infinite sites assumption | D): the
    question of :func:`noise_test` ("is the true matrix conflict-free?") as a
    Bayesian classifier.

    Generative prior: with probability 1 − ``prior`` the infinite sites model
    of :func:`noise_probability`'s noisy class (uniform labelled mutation tree,
    uniform attachments over its n + 1 nodes); with probability ``prior`` one
    mutation j (uniform) arises twice: a uniform labelled tree on n + 1 nodes
    whose extra node is j's second occurrence, the two occurrences never on one
    root path (so the true column of j is the union of two disjoint clades and
    usually conflicts), cells attached uniformly over its n + 2 nodes. Both
    observed with false positives at ``alpha`` and false negatives at ``beta``.
    The posterior is the share of the class-1 states in a seeded reversible-
    jump chain over (class, tree, j) (:func:`mcmc_parallel`: within-class tree
    moves, a new j, and switches that add or delete the second occurrence as a
    leaf); ``mc_error`` is its standard error across ``chains`` chains started
    at the ML tree."""
    D = _validate_observed(observed)
    prior = _check_prior(prior)
    alpha, beta = _check_rates(alpha, beta)
    seed = check_seed(seed)
    n_cells, n = D.shape
    if n < 2:
        raise PhyloError("a parallel mutation needs at least 2 mutations")
    a, b = max(alpha, RATE_FLOOR), max(beta, RATE_FLOOR)
    _, deltaT, _, _ = _tables_binary(D, a, b)
    cs = _chain_settings(chains, iterations, burn_in, max(40_000, 400 * n))
    chains, iterations, burn_in, thin = cs.chains, cs.iterations, cs.burn_in, cs.thin
    log_n0 = (n - 1) * math.log(n + 1)
    log_switch = (math.log(prior) - math.log1p(-prior) - math.log(n)
                  - _log_unrelated_trees(n) + log_n0
                  - n_cells * (math.log(n + 2) - math.log(n + 1)))
    seeds = _child_seeds(seed, 1 + chains)
    start = np.ascontiguousarray(solve(D, alpha=a, beta=b, restarts=2, seed=seeds[0]).parent,
                                 dtype=np.int64)
    shares = []
    for ch in range(chains):
        cls, _ = _kb.mcmc_parallel(deltaT, start, seeds[1 + ch], iterations, burn_in, thin,
                                   P_PRUNE, PARALLEL_SWITCH, PARALLEL_RELABEL, log_switch)
        shares.append(float(cls.mean()))
    shares = np.array(shares)
    p = float(shares.mean())
    se = float(shares.std(ddof=1) / math.sqrt(chains))
    if 0.0 < p < 1.0:
        lbf = math.log(p) - math.log1p(-p) - (math.log(prior) - math.log1p(-prior))
    else:
        lbf = math.inf if p == 1.0 else -math.inf
    return Classification("parallel-mutation", p, prior, lbf, "mcmc", alpha, beta, se,
                          int(chains * cls.size))
