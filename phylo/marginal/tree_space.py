"""Marginal likelihood over tree space, and clade / constraint Bayes factors.

The fixed-topology estimators give Z_τ = ∫ p(D | θ, τ) p(θ | τ) dθ for one unrooted
topology τ. With a uniform prior p(τ) = 1 / (2n − 5)!! on unrooted binary topologies
of n taxa, the marginal likelihood of the model over tree space is
Z = Σ_τ p(τ) Z_τ, and two estimators of it are built here.

Posterior odds (``method="odds"``)
    Since P(τ | D) = p(τ) Z_τ / Z for every τ, for a set S of high-posterior topologies

        log Z = logsumexp_{τ∈S} [log Z_τ + log p(τ)] − log P(S | D),

    with P(S | D) from the tree sample (relative frequencies) or from an SBN fitted
    to it (``posterior="sbn"``). Every τ ∈ S also implies its own value
    log Z_τ + log p(τ) − log P(τ | D); their spread is printed as a diagnostic: a
    spread beyond the Monte-Carlo errors means a sample that has not converged or
    an inner estimator that is off. The identity needs P(τ | D) *under the model
    being integrated*: a sample made under another model is never used this way.

SBN importance sampling (``method="sbn-is"``)
    Z = E_{τ∼q}[p(τ) Z_τ / q(τ)] with q an SBN (EM or EM-α, Zhang & Matsen 2018)
    fitted to the sample: n topologies are drawn from q (seeded) and Z_τ estimated
    once per distinct topology. The Kish effective sample size and the PSIS Pareto
    k̂ (:mod:`phylo.marginal.psis`) of the weights are reported, with a warning when
    k̂ > 0.7. This is the estimator for diffuse posteriors, and the one used when the
    sample came from another model (``sample_model`` ≠ ``model``): any proposal gives
    an unbiased estimate of Z, so a JC sample serves GTR+Γ as well, at some loss of
    efficiency that k̂ and the ESS measure.

Standard errors (natural log)
    odds: Var(log Z) ≈ Σ_τ f_τ² se_τ² + (se(P(S)) / P(S))², f_τ = p(τ) Z_τ / Σ_S p Z
    (delta method; se_τ the inner estimator's standard error of log Z_τ). se(P(S)):
    between-run spread of the per-run P(S) when several runs are given (mean over runs,
    MrBayes' convention); batch means (``N_BATCHES`` contiguous batches) for one run
    of sequential trees; for one ``.trprobs`` summary (no sample order) a binomial
    error with N = 1 / (smallest weight) draws, which assumes independent draws and
    therefore understates autocorrelated error (stated in the result).
    sbn-is: delta method over the n draws, plus the inner errors of each Z_τ.

Clade / constraint Bayes factors (:func:`clade_bayes_factor`)
    BF = [P(C | D) / (1 − P(C | D))] / [p(C) / (1 − p(C))], with the prior probability
    p(C) exact: an unrooted binary topology contains a (possibly multifurcating)
    constraint tree iff it resolves each constraint node of degree d into one of
    (2d − 5)!! unrooted binary trees on its d neighbours, so
    #(τ ⊇ C) = Π_v (2 d_v − 5)!! (a split A|B: (2|A| − 3)!! (2|B| − 3)!!).
    A posterior probability of 0 (or 1) gives a bound, not an infinity: with N
    independent draws none of which has the clade, P(C | D) < 1 − 0.05^{1/N}
    (the exact one-sided 95 % binomial bound, ≈ 3/N, "rule of three").
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import numpy as np
from scipy import special

from ..errors import EstimatorError, PhyloError, TaxonMismatchError, TreeError
from ..io.alignment import Alignment
from ..trees.splits import TopologySample, n_words, normalize_splits, tree_splits
from ..trees.tree import Tree
from .base import Estimate, MarginalLikelihoodEstimator, MarginalLikelihoodResult
from .base_problem import BaseProblem
from .psis import KHAT_UNRELIABLE, importance_ess, pareto_khat

#: Inner estimator used when none is named (Fourment et al. 2020: the best fast one).
DEFAULT_ESTIMATOR = "gamma-laplus-is"
#: Contiguous batches for batch-means errors of one sequential run.
N_BATCHES = 20
#: Odds method: stop adding topologies to S once it holds this posterior mass ...
DEFAULT_TARGET_MASS = 0.95
#: ... or this many topologies.
DEFAULT_MAX_TOPOLOGIES = 40
#: Odds method: refuse when the chosen S holds less posterior mass than this (its
#: relative error would dominate; the SBN importance sampler is meant for that case).
MIN_POSTERIOR_MASS = 0.05
#: Odds method: a topology enters S only when it was sampled at least this many times
#: (an estimated count below that has a relative error above ~30 %).
MIN_TOPOLOGY_COUNT = 10
#: EM-α pseudo-count scale of an SBN fitted for P(S | D) (Zhang & Matsen 2018) ...
SBN_ALPHA_POSTERIOR = 1e-4
#: ... and for an importance proposal (heavier tails than the posterior estimate).
SBN_ALPHA_PROPOSAL = 0.1
#: Odds method with an SBN alone: candidate topologies for S are drawn from it.
SBN_CANDIDATE_DRAWS = 10_000
#: SBN importance sampling: topologies drawn from q by default.
DEFAULT_IS_DRAWS = 1000
#: Per-topology implied log Z values disagree when one is further than this many of
#: its standard errors from the pooled value (and further than DISAGREE_NATS).
DISAGREE_SE = 4.0
DISAGREE_NATS = 0.1
#: One-sided level of the zero-support bound on a clade's posterior probability.
BOUND_LEVEL = 0.95


# ---------------------------------------------------------------------------
# counting topologies (exact)
# ---------------------------------------------------------------------------

def log_odd_double_factorial(m: int) -> float:
    """log((2m − 1)!!) = log(1·3·5···(2m − 1)); 0 for m ≤ 0."""
    if m <= 0:
        return 0.0
    return float(special.gammaln(2 * m + 1) - m * math.log(2.0) - special.gammaln(m + 1))


def log_n_unrooted_topologies(n_taxa: int) -> float:
    """log of the number (2n − 5)!! of unrooted binary topologies on n ≥ 3 taxa."""
    if n_taxa < 3:
        raise PhyloError(f"unrooted binary topologies need at least 3 taxa, got {n_taxa}")
    return log_odd_double_factorial(n_taxa - 2)


def log_n_rooted_topologies(n_taxa: int) -> float:
    """log of the number (2n − 3)!! of rooted binary topologies on n ≥ 1 taxa."""
    return log_odd_double_factorial(n_taxa - 1)


def log_n_resolutions(constraint: Tree) -> float:
    """log of the number of unrooted binary topologies on the constraint's taxa that
    contain every split of ``constraint`` (a tree, multifurcations allowed): the
    product over its internal nodes of (2d − 5)!!, d the node's degree."""
    t = constraint
    if t.n_children[t.root] == 2 and t.n_leaves > 2:
        t = t.unrooted()
    total = 0.0
    for v in range(t.n_leaves, t.n_nodes):
        d = int(t.n_children[v]) + (0 if v == t.root else 1)
        total += log_odd_double_factorial(d - 2)
    return total


# ---------------------------------------------------------------------------
# tree samples
# ---------------------------------------------------------------------------

@dataclass
class TreeSpaceSample:
    """Topologies of one or more runs, with what is needed for Monte-Carlo errors.

    pooled: all runs' distinct topologies (counts = summed weights).
    run_frequencies: (R, U) relative frequency of each topology in each run.
    sequences: per run, the post-burn-in topology index of each tree in file order
        (None for ``.trprobs`` summaries, which hold no sample order).
    n_draws: per run, the number of MCMC samples behind its frequencies (trees read;
        for a summary, 1 / smallest weight, rounded).
    summary: whether the runs are weighted summaries (``.trprobs``).
    model: the substitution model the sample was made under, when the user says so.
    """

    pooled: TopologySample
    run_frequencies: np.ndarray
    sequences: list[np.ndarray] | None
    n_draws: list[int]
    summary: bool
    sources: tuple[str, ...] = ()
    model: str | None = None

    @property
    def n_runs(self) -> int:
        return int(self.run_frequencies.shape[0])

    @property
    def taxa(self) -> tuple[str, ...]:
        return self.pooled.taxa

    def frequencies(self) -> np.ndarray:
        """Posterior estimate of each topology: the mean of the runs' frequencies."""
        return self.run_frequencies.mean(axis=0)

    def mass_and_error(self, members: np.ndarray) -> tuple[float, float, str]:
        """Estimated P(S | D) of the topology indices ``members`` (or a boolean mask
        over topologies), its Monte-Carlo standard error and how that was obtained."""
        mask = np.zeros(self.pooled.n_topologies, dtype=bool)
        mask[members] = True
        per_run = self.run_frequencies[:, mask].sum(axis=1)
        mass = float(per_run.mean())
        # independent draws are the best an MCMC sample can do: no estimate goes below
        # the binomial error (a spread of two or three runs can be ~0 by chance)
        floor = math.sqrt(max(mass * (1.0 - mass), 0.0) / max(sum(self.n_draws), 1))
        if self.n_runs >= 2:
            se = float(per_run.std(ddof=1) / math.sqrt(self.n_runs))
            return (mass, max(se, floor), f"between-run spread of {self.n_runs} runs (floored "
                    "at the binomial error of independent draws)")
        if self.sequences is not None:
            seq = self.sequences[0]
            n = seq.shape[0]
            b = min(N_BATCHES, n // 10)
            if b >= 2:
                hits = mask[seq].astype(np.float64)
                size = n // b
                means = hits[:b * size].reshape(b, size).mean(axis=1)
                se = float(means.std(ddof=1) / math.sqrt(b))
                return (mass, max(se, floor), f"batch means ({b} batches of {size} trees; "
                        "floored at the binomial error)")
        n = max(self.n_draws[0], 1)
        se = math.sqrt(max(mass * (1.0 - mass), 0.0) / n)
        return (mass, se, f"binomial with N = {n} draws (a summary file has no sample order; "
                          "assumes independent draws, so it understates autocorrelated error)")

    def topology_errors(self, indices: np.ndarray) -> np.ndarray:
        """Standard error of each listed topology's posterior estimate (same rules as
        :meth:`mass_and_error`)."""
        return np.array([self.mass_and_error(np.array([int(u)]))[1] for u in indices])


def _n_draws_of(weights: np.ndarray, summary: bool) -> int:
    if not summary:
        return int(weights.shape[0])
    w = weights[weights > 0]
    return int(round(w.sum() / w.min())) if w.size else 0


def read_tree_sample(paths: str | os.PathLike | Sequence[str | os.PathLike], *,
                     burnin: float | int = 0.25, taxa: Sequence[str] | None = None,
                     model: str | None = None) -> TreeSpaceSample:
    """Read one or more runs (MrBayes ``.t``/``.trprobs``, BEAST ``.trees``, Newick).

    ``burnin`` (fraction or count, per file, MrBayes' convention) applies to sequential
    tree files; ``.trprobs`` summaries (trees with ``[&W w]`` weights) are already
    post-burn-in and are read whole. Every tree must be binary and have ``taxa``
    (when given) exactly. ``model``: the substitution model the runs were made under.
    """
    from ..io.trees import read_topology_runs, read_trees
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise PhyloError("no tree-sample files given")
    kinds = []
    for p in paths:
        first = next(iter(read_trees(p)), None)
        if first is None:
            raise PhyloError("no trees in the file", path=p)
        kinds.append(first.weight != 1.0)
    if len(set(kinds)) > 1:
        raise PhyloError("mix of weighted summaries (.trprobs) and sequential tree samples; "
                         "give runs of one kind")
    summary = kinds[0]
    try:
        pooled, seqs, weights = read_topology_runs(paths, burnin=0 if summary else burnin,
                                                   taxa=taxa, rooted=None)
    except TaxonMismatchError as exc:
        raise TaxonMismatchError(f"the tree sample's taxa differ from the alignment's: {exc.detail}",
                                 path=exc.path) from None
    pooled = pooled.as_unrooted() if pooled.rooted else pooled
    if pooled.rooted:
        raise PhyloError("could not unroot the tree sample", path=paths[0])
    _check_binary(pooled)
    u = pooled.n_topologies
    freqs = np.zeros((len(paths), u))
    for r, (ids, w) in enumerate(zip(seqs, weights)):
        if ids.size == 0 or w.sum() <= 0:
            raise PhyloError("no trees left after burn-in", path=paths[r])
        freqs[r] = np.bincount(ids, weights=w, minlength=u) / w.sum()
    return TreeSpaceSample(pooled, freqs, None if summary else seqs,
                           [_n_draws_of(w, summary) for w in weights], summary,
                           tuple(paths), model)


#: A listed topology probabilities' sum may exceed 1 by rounding of each (6 decimals
#: in MrBayes/19-dubious files) up to this much.
PROBABILITY_SUM_SLACK = 1e-4


def read_topology_probabilities(path: str | os.PathLike, *, n_draws: int,
                                taxa: Sequence[str] | None = None,
                                model: str | None = None) -> TreeSpaceSample:
    """Topologies listed with their *posterior probabilities*, one per line
    ``probability<TAB or spaces>newick`` (the 19-dubious-ways credible-set files,
    ``JC_no_gamma_credible_set_dsk``), possibly only part of tree space.

    Unlike a ``.trprobs`` run, the probabilities are **not** renormalised: a list of
    the 1000 best topologies holding 25 % of the posterior gives P(S | D) ≤ 0.25 for
    the odds method. ``n_draws``: the number of MCMC samples the probabilities were
    estimated from (their errors are binomial with that N, which assumes independent
    draws; stated in the result). ``taxa``: the alignment's taxa (checked).
    """
    from ..io.newick import parse_newick
    from ..trees.splits import topology_sample_from_trees
    path = os.fspath(path)
    if not isinstance(n_draws, (int, np.integer)) or n_draws < 1:
        raise PhyloError(f"n_draws must be a positive integer (the MCMC samples behind the "
                         f"probabilities), got {n_draws!r}", path=path)
    try:
        with open(path) as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise PhyloError(f"cannot read the topology list: {exc.strerror}", path=path) from None
    probs, trees = [], []
    for no, text in enumerate(lines, start=1):
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        parts = text.split(None, 1)
        if len(parts) != 2:
            raise PhyloError("expected 'probability newick' on the line", path=path, line=no)
        try:
            p = float(parts[0])
        except ValueError:
            raise PhyloError(f"not a probability: {parts[0][:20]!r}", path=path, line=no) from None
        if not (0.0 < p <= 1.0):
            raise PhyloError(f"a topology probability must be in (0, 1], got {parts[0]}",
                             path=path, line=no)
        tree = parse_newick(parts[1], taxa=taxa, source=path, line=no)
        probs.append(p)
        trees.append(tree.unrooted() if tree.n_children[tree.root] == 2 and tree.n_leaves > 2
                     else tree)
    if not trees:
        raise PhyloError("no topologies in the list", path=path)
    total = float(np.sum(probs))
    if total > 1.0 + PROBABILITY_SUM_SLACK:
        raise PhyloError(f"the listed probabilities sum to {total:.6g} > 1", path=path)
    order = tuple(taxa) if taxa is not None else trees[0].taxa
    # each tree carries its probability as its weight: the pooled counts are then the
    # probabilities, in the pooled topology order
    trees = [dataclasses.replace(t, weight=p) for t, p in zip(trees, probs)]
    pooled = topology_sample_from_trees(trees, taxa=order, rooted=False)
    if pooled.n_topologies != len(trees):
        raise PhyloError(f"the list names a topology more than once ({len(trees)} lines, "
                         f"{pooled.n_topologies} distinct topologies)", path=path)
    pooled = dataclasses.replace(pooled, sources=(path,), n_trees=len(trees))
    _check_binary(pooled)
    freqs = pooled.counts[None, :].copy()
    return TreeSpaceSample(pooled, freqs, None, [int(n_draws)], True, (path,), model)


def sample_from_topologies(samples: TopologySample | Sequence[TopologySample], *,
                           model: str | None = None) -> TreeSpaceSample:
    """A :class:`TreeSpaceSample` from already-read :class:`TopologySample` runs (no
    sample order: errors are between-run, or binomial with N = the run's tree count)."""
    runs = [samples] if isinstance(samples, TopologySample) else list(samples)
    if not runs:
        raise PhyloError("no tree samples given")
    runs = [r.as_unrooted() for r in runs]
    pooled = TopologySample.concatenate(runs, weights=[1.0 / r.total for r in runs])
    _check_binary(pooled)
    table = {k.tobytes(): i for i, k in enumerate(pooled.keys)}
    freqs = np.zeros((len(runs), pooled.n_topologies))
    for r, run in enumerate(runs):
        run = run.with_taxa_order(pooled.taxa)
        for k, c in zip(run.keys, run.counts):
            freqs[r, table[k.tobytes()]] += c / run.total
    return TreeSpaceSample(pooled, freqs, None, [int(r.n_trees) for r in runs], False,
                           tuple(s for r in runs for s in r.sources), model)


def _topology_splits(sample: TopologySample) -> list[np.ndarray]:
    """Non-trivial splits (normalised bitsets, (m, W)) of every topology of ``sample``."""
    return [tree_splits(_unrooted_tree(sample, u), rooted=False) for u in range(sample.n_topologies)]


def _unrooted_tree(sample: TopologySample, u: int) -> Tree:
    t = sample.tree(u)
    return t.unrooted() if t.rooted or (t.n_children[t.root] == 2 and t.n_leaves > 2) else t


def _check_binary(sample: TopologySample) -> None:
    s = sample.n_taxa
    if s < 4:
        raise PhyloError(f"tree space of {s} taxa holds one topology; nothing to integrate")
    splits = _topology_splits(sample)
    n_splits = np.array([sp.shape[0] for sp in splits])
    bad = np.flatnonzero(n_splits != s - 3)
    if bad.size:
        where = sample.sources[0] if sample.sources else None
        raise TreeError(f"the tree sample holds a non-binary tree ({int(n_splits[bad[0]])} of "
                        f"the {s - 3} internal branches of a binary unrooted tree): "
                        f"{sample.tree(int(bad[0])).to_newick(lengths=False)}", path=where)


# ---------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class TopologyEstimate:
    """What one topology contributed (natural logs).

    newick: the unrooted topology (no branch lengths).
    posterior: estimated P(τ | D) (sample frequency, or SBN probability), or None
        for SBN importance draws of unseen topologies; posterior_se its MC error.
    log_z: log Z_τ from the inner estimator; log_z_se its standard error (None when
        the inner estimator gives none).
    implied_log_z: odds method: log Z_τ + log p(τ) − log P(τ | D); sbn-is: None.
    implied_se: its standard error (inner and frequency errors combined).
    log_q: sbn-is: log q(τ) under the SBN proposal; draws: how many of the n draws.
    share: the topology's share of the estimate (p Z_τ over the sum over S, or of the
        importance weights).
    inner_pareto_k: the PSIS Pareto k̂ of the inner estimator's own importance weights
        (importance-sampling inner estimators such as gamma-laplus-is; None for
        others): above 0.7 log Z_τ and its standard error are unreliable.
    """

    newick: str
    posterior: float | None
    posterior_se: float | None
    log_z: float
    log_z_se: float | None
    implied_log_z: float | None = None
    implied_se: float | None = None
    log_q: float | None = None
    draws: int | None = None
    share: float = 0.0
    inner_pareto_k: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def describe_priors(problem, n_taxa: int) -> dict[str, str]:
    """The priors of the tree-space model, in words (stated in every result)."""
    out = {"topology": f"uniform over the (2n-5)!! unrooted binary topologies "
                       f"(n = {n_taxa}: log p(tau) = {-log_n_unrooted_topologies(n_taxa):.4f})",
           "branch_lengths": f"i.i.d. Exponential(rate {problem.branch_prior.rate:g}), "
                             f"mean {1.0 / problem.branch_prior.rate:g} substitutions/site"}
    for block in problem._blocks:
        prior = block.prior
        out[block.key] = prior.describe() if hasattr(prior, "describe") else repr(prior)
    if not problem._blocks:
        out["model_parameters"] = "none free"
    return out


# ---------------------------------------------------------------------------
# the inner estimator
# ---------------------------------------------------------------------------

def _topology_seed(seed: int, key: np.ndarray) -> int:
    """A per-topology seed: the same topology gets the same seed whatever the order."""
    entropy = [int(seed), zlib.crc32(np.ascontiguousarray(key).tobytes())]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint32)[0])


class _InnerRunner:
    def __init__(self, alignment: Alignment, model: Any, estimator: MarginalLikelihoodEstimator,
                 branch_prior_rate: float, seed: int, progress: bool) -> None:
        self.alignment = alignment
        self.model = model
        self.estimator = estimator
        self.rate = branch_prior_rate
        self.seed = seed
        self.progress = progress
        self.evaluations = 0
        self.problem = None
        self._cache: dict[bytes, tuple[float, float | None, float | None]] = {}

    def __call__(self, sample: TopologySample, u: int) -> tuple[float, float | None, float | None]:
        """(log Z_τ, its standard error or None, the inner Pareto k̂ or None) of
        topology ``u`` of ``sample`` (computed once per topology)."""
        from .problem import Problem
        key = sample.keys[u]
        k = key.tobytes()
        if k in self._cache:
            return self._cache[k]
        tree = sample.tree(u).with_taxa_order(self.alignment.taxa)
        problem = Problem(self.alignment, tree, self.model, branch_prior_rate=self.rate)
        if self.problem is None:
            self.problem = problem
        res = self.estimator.run(problem, seed=_topology_seed(self.seed, key))
        self.evaluations += res.likelihood_evaluations
        khat = res.diagnostics.get("pareto_k")
        khat = float(khat) if khat is not None and math.isfinite(khat) else None
        out = (res.log_marginal_likelihood, res.std_error, khat)
        self._cache[k] = out
        return out


def _bar(items, show: bool, what: str):
    """``items`` with a tqdm progress bar on stderr when ``show``."""
    if not show:
        return items
    import sys
    from tqdm import tqdm
    return tqdm(items, desc=what, unit="topology", file=sys.stderr)


def _normalise_model(model: Any) -> str:
    """The model's structure ("K80", "HKY+F+G4"): its canonical string without parameter
    values, which are integrated over their priors whatever starting values were given."""
    import re
    from ..models import Model
    m = model if not isinstance(model, str) else Model.from_string(model)
    return re.sub(r"\{[^}]*\}", "", m.to_string())


# ---------------------------------------------------------------------------
# the estimators
# ---------------------------------------------------------------------------

def tree_space_marginal(alignment: Alignment, samples: Any, model: Any = "JC", *,
                        estimator: str | MarginalLikelihoodEstimator = DEFAULT_ESTIMATOR,
                        method: str = "odds", seed: int = 1, burnin: float | int = 0.25,
                        posterior: str = "frequencies", sample_model: str | None = None,
                        sbn: Any = None, sbn_method: str = "em-alpha",
                        sbn_alpha: float | None = None,
                        target_mass: float = DEFAULT_TARGET_MASS,
                        max_topologies: int = DEFAULT_MAX_TOPOLOGIES,
                        min_count: int = MIN_TOPOLOGY_COUNT,
                        n_draws: int = DEFAULT_IS_DRAWS, branch_prior_rate: float = 10.0,
                        estimator_settings: dict[str, Any] | None = None,
                        progress: bool = False) -> MarginalLikelihoodResult:
    """log Z of ``model`` on ``alignment``, integrated over unrooted topologies.

    Parameters
    ----------
    alignment: the data.
    samples: tree-sample file path(s) (one per run), a :class:`TreeSpaceSample`, one or
        more :class:`TopologySample` runs, or a fitted :class:`phylo.sbn.SBN` alone.
    model: substitution model (IQ-TREE string or Model); its free parameters get the
        default priors of :mod:`phylo.marginal.priors`.
    estimator: the fixed-topology estimator of each Z_τ (registry name or instance;
        ``estimator_settings`` go to the registry).
    method: ``"odds"`` (posterior odds over a set S) or ``"sbn-is"`` (SBN importance
        sampling over topologies). ``"odds"`` switches to ``"sbn-is"`` when
        ``sample_model`` differs from ``model`` (said in the result).
    seed: every random choice (inner estimators, SBN draws) derives from it.
    burnin: per sequential run (ignored for ``.trprobs`` summaries).
    posterior: odds method: P(S | D) from sample ``"frequencies"`` or a fitted ``"sbn"``.
    sample_model: the model the tree sample was made under, if known.
    sbn: a fitted SBN to use (else one is fitted with ``sbn_method``/``sbn_alpha`` when
        needed). sbn_alpha: EM-α pseudo-count scale; default :data:`SBN_ALPHA_POSTERIOR`
        for P(S | D) (the SBN paper's value) and :data:`SBN_ALPHA_PROPOSAL` for the
        importance proposal, which needs more mass on unseen topologies.
    target_mass, max_topologies, min_count: how S is chosen (most frequent topologies
        first, each sampled at least ``min_count`` times, until S holds ``target_mass``
        or ``max_topologies``).
    n_draws: sbn-is: topologies drawn from q.

    Returns a :class:`MarginalLikelihoodResult` (``estimator`` "tree-space-odds" or
    "tree-space-sbn-is") whose ``per_topology`` lists :class:`TopologyEstimate` rows
    and whose ``diagnostics`` hold ``method``, ``method_reason``, ``n_topologies``,
    ``posterior_mass`` (odds), ``posterior_mass_se`` and how it was obtained,
    ``implied_spread`` (odds), ``ess`` and ``pareto_k`` (sbn-is), ``priors`` and
    ``warnings``.
    """
    from .registry import get_estimator
    start = time.perf_counter()
    if method not in ("odds", "sbn-is"):
        raise EstimatorError(f"method must be 'odds' or 'sbn-is', got {method!r}")
    if posterior not in ("frequencies", "sbn"):
        raise EstimatorError(f"posterior must be 'frequencies' or 'sbn', got {posterior!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise EstimatorError(f"seed must be a non-negative integer, got {seed!r}")
    if not (0.0 < target_mass <= 1.0):
        raise EstimatorError(f"target_mass must be in (0, 1], got {target_mass}")
    if max_topologies < 1 or min_count < 1 or n_draws < 2:
        raise EstimatorError("max_topologies and min_count must be >= 1 and n_draws >= 2")
    if not (branch_prior_rate > 0 and math.isfinite(branch_prior_rate)):
        raise EstimatorError(f"branch_prior_rate must be positive, got {branch_prior_rate}")
    est = get_estimator(estimator, **(estimator_settings or {}))
    model_name = _normalise_model(model)
    tss, sbn = _coerce_samples(samples, alignment, burnin, sample_model, sbn)
    n_taxa = alignment.n_taxa
    log_prior_tau = -log_n_unrooted_topologies(n_taxa)
    warnings: list[str] = []
    requested = method
    reason = f"{method} as requested"
    src_model = sample_model if sample_model is not None else (tss.model if tss else None)
    if src_model is not None and _normalise_model(src_model) != model_name:
        if method == "odds":
            method = "sbn-is"
            reason = (f"the tree sample is from {src_model}, not {model_name}: the odds "
                      "identity needs P(tau|D) under the integrated model, so the SBN fitted to "
                      "the sample was used as an importance proposal instead")
        else:
            reason = f"sbn-is as requested (proposal fitted to a {src_model} sample)"
    runner = _InnerRunner(alignment, model, est, branch_prior_rate, int(seed), progress)
    if method == "odds":
        out = _odds(tss, sbn, posterior, runner, log_prior_tau, target_mass, max_topologies,
                    min_count, int(seed), sbn_method,
                    SBN_ALPHA_POSTERIOR if sbn_alpha is None else sbn_alpha, warnings)
    else:
        out = _sbn_is(tss, sbn, runner, log_prior_tau, n_draws, int(seed), sbn_method,
                      SBN_ALPHA_PROPOSAL if sbn_alpha is None else sbn_alpha, warnings)
    log_z, se, rows, diag = out
    diag.update(_inner_tail_summary(rows, est.name, warnings))
    problem = runner.problem
    diag.update({"method": method, "requested_method": requested, "method_reason": reason,
                 "model": model_name, "sample_model": src_model,
                 "inner_estimator": est.name, "inner_settings": est.settings(),
                 "log_prior_topology": log_prior_tau,
                 "priors": describe_priors(problem, n_taxa), "warnings": warnings})
    if tss is not None:
        diag.update({"n_runs": tss.n_runs, "sources": list(tss.sources),
                     "sample_topologies": tss.pooled.n_topologies, "sample_draws": tss.n_draws})
    settings = {"method": method, "posterior": posterior if method == "odds" else "sbn",
                "target_mass": target_mass, "max_topologies": max_topologies,
                "min_count": min_count, "n_draws": n_draws, "burnin": burnin,
                "sbn_method": sbn_method, "sbn_alpha": sbn_alpha,
                "branch_prior_rate": branch_prior_rate, "inner_estimator": est.name}
    if not math.isfinite(log_z):
        raise EstimatorError(f"tree-space {method}: the estimate is not finite ({log_z})")
    return MarginalLikelihoodResult(
        log_marginal_likelihood=float(log_z), std_error=None if se is None else float(se),
        likelihood_evaluations=runner.evaluations, seconds=time.perf_counter() - start,
        estimator=f"tree-space-{method}", settings=settings, seed=int(seed),
        diagnostics=diag, per_topology=tuple(rows))


def _inner_tail_summary(rows: Sequence[TopologyEstimate], inner_name: str,
                        warnings: list[str]) -> dict[str, Any]:
    """How many topologies' inner estimates have heavy-tailed importance weights
    (inner Pareto k̂ > :data:`KHAT_UNRELIABLE`) and the share of the estimate they
    carry; appends a warning when there are any. Empty for inner estimators that
    report no k̂."""
    ks = [r.inner_pareto_k for r in rows if r.inner_pareto_k is not None]
    if not ks:
        return {}
    bad = [r for r in rows if r.inner_pareto_k is not None and r.inner_pareto_k > KHAT_UNRELIABLE]
    bad_share = float(sum(r.share for r in bad))
    if bad:
        worst = max(r.inner_pareto_k for r in bad)
        warnings.append(
            f"the inner estimator {inner_name} has heavy-tailed importance weights (Pareto "
            f"k-hat > {KHAT_UNRELIABLE}, worst {worst:.2f}) on {len(bad)} of {len(ks)} "
            f"topologies, which carry {bad_share:.1%} of the estimate: their log Z_tau and "
            "standard errors are unreliable, and so is the standard error of the total")
    return {"inner_pareto_k_max": float(max(ks)), "inner_pareto_k_median": float(np.median(ks)),
            "inner_unreliable_topologies": len(bad), "inner_unreliable_share": bad_share}


def _coerce_samples(samples, alignment, burnin, sample_model, sbn):
    """(TreeSpaceSample or None, SBN or None) from what the user gave."""
    from ..sbn import SBN
    if isinstance(samples, SBN):
        if sbn is not None:
            raise EstimatorError("give the SBN either as samples or as sbn=, not both")
        sbn, samples = samples, None
    tss = None
    if samples is None:
        if sbn is None:
            raise EstimatorError("give tree samples or a fitted SBN")
    elif isinstance(samples, TreeSpaceSample):
        tss = samples
    elif isinstance(samples, (str, os.PathLike)) or (
            isinstance(samples, (list, tuple)) and samples
            and all(isinstance(s, (str, os.PathLike)) for s in samples)):
        tss = read_tree_sample(samples, burnin=burnin, taxa=alignment.taxa, model=sample_model)
    else:
        tss = sample_from_topologies(samples, model=sample_model)
    taxa = tss.taxa if tss is not None else sbn.taxa
    if sorted(taxa) != sorted(alignment.taxa):
        extra = sorted(set(taxa) - set(alignment.taxa))[:3]
        missing = sorted(set(alignment.taxa) - set(taxa))[:3]
        raise TaxonMismatchError(f"the tree sample's taxa differ from the alignment's "
                                 f"(not in the alignment: {extra}; missing from the sample: "
                                 f"{missing})", path=tss.sources[0] if tss and tss.sources else None)
    if tss is not None and tss.taxa != tuple(alignment.taxa):
        tss = dataclasses.replace(tss, pooled=tss.pooled.with_taxa_order(alignment.taxa))
    return tss, sbn


def _fit_sbn(tss: TreeSpaceSample, method: str, alpha: float):
    from ..sbn import fit
    return fit(tss.pooled, method, alpha=alpha) if method == "em-alpha" else fit(tss.pooled, method)


def _choose_set(freqs: np.ndarray, counts_ok: np.ndarray, target_mass: float,
                max_topologies: int) -> np.ndarray:
    order = np.argsort(-freqs, kind="stable")
    chosen = []
    mass = 0.0
    for u in order:
        if not counts_ok[u] or freqs[u] <= 0:
            continue
        chosen.append(int(u))
        mass += freqs[u]
        if mass >= target_mass or len(chosen) >= max_topologies:
            break
    return np.array(chosen, dtype=np.int64)


def _odds(tss, sbn, posterior, runner, log_prior_tau, target_mass, max_topologies, min_count,
          seed, sbn_method, sbn_alpha, warnings):
    if tss is None:
        # an SBN alone: its most probable topologies among seeded draws form S
        smp = sbn.sample(SBN_CANDIDATE_DRAWS, seed=seed, rooted=False)
        tss = sample_from_topologies(smp)
        freqs = np.exp(sbn.log_prob(tss.pooled, rooted=False))
        counts_ok = np.ones(freqs.size, dtype=bool)
        posterior = "sbn"
        chosen = _choose_set(freqs, counts_ok, target_mass, max_topologies)
        p_tau = freqs[chosen]
        p_se = np.zeros(chosen.size)
        mass, mass_se = float(p_tau.sum()), 0.0
        se_how = "none (probabilities of a given SBN carry no Monte-Carlo error here)"
    else:
        freqs = tss.frequencies()
        n_total = sum(tss.n_draws)
        approx_counts = freqs * n_total
        counts_ok = approx_counts >= min_count - 1e-9
        chosen = _choose_set(freqs, counts_ok, target_mass, max_topologies)
        if chosen.size == 0:
            raise EstimatorError(
                f"the tree sample is too small for the odds method: no topology was sampled "
                f"{min_count} times (of {n_total} draws, {tss.pooled.n_topologies} topologies); "
                "use method='sbn-is' or a longer run", path=tss.sources[0] if tss.sources else None)
        mass, mass_se, se_how = tss.mass_and_error(chosen)
        p_tau = freqs[chosen]
        p_se = tss.topology_errors(chosen)
        if posterior == "sbn":
            sbn = sbn if sbn is not None else _fit_sbn(tss, sbn_method, sbn_alpha)
            sub = _subsample(tss.pooled, chosen)
            p_tau = np.exp(sbn.log_prob(sub, rooted=False))
            mass = float(p_tau.sum())
            # the frequency errors stand in for the SBN's (stated in se_how)
            se_how += "; SBN probabilities, with the frequency errors as their error"
    if mass < MIN_POSTERIOR_MASS:
        raise EstimatorError(
            f"the tree sample is too diffuse for the odds method: its {chosen.size} best "
            f"topologies hold {mass:.3g} of the posterior (needs >= {MIN_POSTERIOR_MASS}); "
            "use method='sbn-is'", path=tss.sources[0] if tss.sources else None)
    logz_tau = np.empty(chosen.size)
    se_tau = np.full(chosen.size, np.nan)
    khat_tau: list[float | None] = [None] * chosen.size
    for i, u in enumerate(_bar(chosen, runner.progress, "log Z per topology")):
        lz, s, khat_tau[i] = runner(tss.pooled, int(u))
        logz_tau[i] = lz
        if s is not None:
            se_tau[i] = s
    terms = logz_tau + log_prior_tau
    log_a = float(special.logsumexp(terms))
    share = np.exp(terms - log_a)
    log_z = log_a - math.log(mass)
    inner_missing = bool(np.isnan(se_tau).any())
    var_inner = float(np.sum(share ** 2 * np.nan_to_num(se_tau) ** 2))
    var_mass = (mass_se / mass) ** 2
    se = math.sqrt(var_inner + var_mass)
    if inner_missing:
        warnings.append(f"the inner estimator {runner.estimator.name} gives no standard error: "
                        "std_error holds only the Monte-Carlo error of P(S|D)")
    with np.errstate(divide="ignore"):
        implied = terms - np.log(p_tau)
    implied_se = np.sqrt(np.nan_to_num(se_tau) ** 2 + (p_se / np.maximum(p_tau, 1e-300)) ** 2)
    rows = []
    for i, u in enumerate(chosen):
        rows.append(TopologyEstimate(
            newick=tss.pooled.tree(int(u)).to_newick(lengths=False), posterior=float(p_tau[i]),
            posterior_se=float(p_se[i]), log_z=float(logz_tau[i]),
            log_z_se=None if np.isnan(se_tau[i]) else float(se_tau[i]),
            implied_log_z=float(implied[i]), implied_se=float(implied_se[i]),
            share=float(share[i]), inner_pareto_k=khat_tau[i]))
    spread = float(np.max(implied) - np.min(implied)) if implied.size > 1 else 0.0
    wsd = float(math.sqrt(np.sum(share * (implied - log_z) ** 2)))
    dev = np.abs(implied - log_z)
    bad = np.flatnonzero((dev > DISAGREE_SE * np.maximum(implied_se, 1e-12)) & (dev > DISAGREE_NATS))
    if bad.size:
        worst = int(bad[np.argmax(dev[bad])])
        warnings.append(
            f"per-topology implied log Z values disagree: {bad.size} of {chosen.size} differ from "
            f"{log_z:.3f} by more than {DISAGREE_SE:g} standard errors (worst: topology "
            f"{worst + 1}, {implied[worst]:.3f} +- {implied_se[worst]:.3f}; max-min spread "
            f"{spread:.3f} nats): the sample may not have converged, or the inner estimator "
            "is off on some topologies")
    diag = {"n_topologies": int(chosen.size), "posterior_mass": mass,
            "posterior_mass_se": mass_se, "posterior_mass_error_method": se_how,
            "posterior_source": posterior,
            "log_sum_prior_z": log_a, "implied_spread": spread, "implied_weighted_sd": wsd,
            "std_error_parts": {"inner": math.sqrt(var_inner), "posterior_mass": math.sqrt(var_mass)}}
    return log_z, se, rows, diag


def _subsample(sample: TopologySample, idx: np.ndarray) -> TopologySample:
    from ..trees.splits import topology_sample_from_parents
    return topology_sample_from_parents(sample.parents[idx], sample.n_nodes[idx],
                                        np.ones(idx.size), sample.taxa, rooted=False)


def _sbn_is(tss, sbn, runner, log_prior_tau, n_draws, seed, sbn_method, sbn_alpha, warnings):
    if sbn is None:
        sbn = _fit_sbn(tss, sbn_method, sbn_alpha)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5B1]))
    draws = sbn.sample(n_draws, rng=rng, rooted=False)
    if tss is not None and tuple(draws.taxa) != tss.taxa:
        draws = draws.with_taxa_order(tss.taxa)
    log_q = sbn.log_prob(draws, rooted=False)
    counts = draws.counts.astype(np.int64)
    u_n = draws.n_topologies
    logz = np.empty(u_n)
    se_in = np.full(u_n, np.nan)
    khat_in: list[float | None] = [None] * u_n
    for u in _bar(range(u_n), runner.progress, "log Z per sampled topology"):
        lz, s, khat_in[u] = runner(draws, u)
        logz[u] = lz
        if s is not None:
            se_in[u] = s
    logw = logz + log_prior_tau - log_q
    # Z-hat = (1/n) sum_i w_i, over draws (each distinct topology counted c_u times)
    n = int(counts.sum())
    lw_all = np.repeat(logw, counts)
    log_z = float(special.logsumexp(lw_all) - math.log(n))
    w = np.exp(lw_all - log_z)                  # w_i / Z-hat, mean 1
    var_draws = float(w.var(ddof=1) / n) if n > 1 else math.inf
    share = counts * np.exp(logw - log_z) / n
    var_inner = float(np.sum(share ** 2 * np.nan_to_num(se_in) ** 2))
    se = math.sqrt(var_draws + var_inner)
    ess = importance_ess(lw_all)
    khat = pareto_khat(lw_all)
    if np.isnan(se_in).any():
        warnings.append(f"the inner estimator {runner.estimator.name} gives no standard error: "
                        "std_error omits the error of each Z_tau")
    if math.isfinite(khat) and khat > KHAT_UNRELIABLE:
        warnings.append(f"Pareto k-hat = {khat:.2f} > {KHAT_UNRELIABLE}: the importance weights "
                        "have a heavy tail; the estimate and its standard error are unreliable "
                        "(more draws, a broader SBN proposal, or the odds method)")
    elif not math.isfinite(khat):
        warnings.append("too few distinct importance weights for a Pareto k-hat")
    freqs = tss.frequencies() if tss is not None else None
    table = {k.tobytes(): i for i, k in enumerate(tss.pooled.keys)} if tss is not None else {}
    rows = []
    for u in np.argsort(-share, kind="stable"):
        i = table.get(draws.keys[u].tobytes())
        rows.append(TopologyEstimate(
            newick=draws.tree(int(u)).to_newick(lengths=False),
            posterior=None if i is None else float(freqs[i]), posterior_se=None,
            log_z=float(logz[u]), log_z_se=None if np.isnan(se_in[u]) else float(se_in[u]),
            log_q=float(log_q[u]), draws=int(counts[u]), share=float(share[u]),
            inner_pareto_k=khat_in[u]))
    diag = {"n_topologies": int(u_n), "n_draws": n, "ess": ess, "pareto_k": khat,
            "sbn_method": sbn.method, "sbn_alpha": getattr(sbn.info, "alpha", None),
            "std_error_parts": {"draws": math.sqrt(var_draws), "inner": math.sqrt(var_inner)}}
    if tss is not None:
        seen = np.array([table.get(draws.keys[u].tobytes()) is not None for u in range(u_n)])
        diag["posterior_mass"] = float(freqs[[table[draws.keys[u].tobytes()]
                                              for u in np.flatnonzero(seen)]].sum()) if seen.any() else 0.0
        diag["draws_in_sample"] = int(counts[seen].sum())
    return log_z, se, rows, diag


# ---------------------------------------------------------------------------
# clade / constraint Bayes factors
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class CladeBayesFactor:
    """Bayes factor of a clade (split) or constraint tree against its complement.

    posterior: estimated P(C | D) (0 or 1 where only a bound on the BF is known);
    posterior_se: its Monte-Carlo error; prior: exact p(C) under uniform topologies;
    log_bayes_factor: natural log of the BF, or of its bound when ``bound`` is
    ``"upper"`` (no sampled tree has C) or ``"lower"`` (every sampled tree has C);
    n_draws: the draws the bound assumes; note: the bound's statement in words.
    """

    constraint: str
    posterior: float | None
    posterior_se: float | None
    prior: float
    log_prior_count: float
    log_bayes_factor: float
    bound: str | None
    n_draws: int
    source: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _splits_of_constraint(taxa: tuple[str, ...], clade: Sequence[str] | None,
                          constraint: Tree | str | None) -> tuple[np.ndarray, float, str]:
    """(normalised split rows (k, W), log #topologies containing them, description)."""
    from ..io.newick import parse_newick
    s = len(taxa)
    pos = {t: i for i, t in enumerate(taxa)}
    if (clade is None) == (constraint is None):
        raise PhyloError("give exactly one of a clade (taxon names) or a constraint tree")
    if clade is not None:
        names = list(clade)
        unknown = [t for t in names if t not in pos]
        if unknown:
            raise TaxonMismatchError(f"clade taxa not in the data: {unknown[:5]}")
        if len(set(names)) != len(names):
            raise PhyloError("a clade names a taxon twice")
        a = len(names)
        if a < 2 or a > s - 2:
            raise PhyloError(f"a clade of {a} of {s} taxa is in every unrooted tree (trivial split); "
                             "give 2 to n-2 taxa")
        row = np.zeros((1, n_words(s)), dtype=np.uint64)
        for t in names:
            i = pos[t]
            row[0, i // 64] |= np.uint64(1) << np.uint64(i % 64)
        rows = normalize_splits(row, s)
        log_count = log_odd_double_factorial(a - 1) + log_odd_double_factorial(s - a - 1)
        return rows, log_count, "clade {" + ",".join(names) + "}"
    tree = parse_newick(constraint) if isinstance(constraint, str) else constraint
    if sorted(tree.taxa) != sorted(taxa):
        raise TaxonMismatchError("the constraint tree must name every taxon of the data exactly "
                                 f"once (differ: {sorted(set(tree.taxa) ^ set(taxa))[:5]}); "
                                 "for a clade give its taxa instead")
    tree = tree.with_taxa_order(taxa)
    rows = tree_splits(tree, rooted=False)
    if rows.shape[0] == 0:
        raise PhyloError("the constraint tree is a star: it constrains nothing")
    return rows, log_n_resolutions(tree), "constraint " + tree.to_newick(lengths=False)


def _contains(sample: TopologySample, rows: np.ndarray) -> np.ndarray:
    """(U,) whether each topology of ``sample`` contains every split row (k, W)."""
    out = np.ones(sample.n_topologies, dtype=bool)
    for u, have in enumerate(_topology_splits(sample)):
        out[u] = all(np.any(np.all(have == r[None, :], axis=1)) for r in rows)
    return out


def clade_bayes_factor(samples: Any, *, clade: Sequence[str] | None = None,
                       constraint: Tree | str | None = None, taxa: Sequence[str] | None = None,
                       burnin: float | int = 0.25, use_sbn: Any = None, n_sbn_draws: int = 100_000,
                       seed: int = 1) -> CladeBayesFactor:
    """Bayes factor for a clade (taxon names; the split clade | rest) or a constraint
    tree (every taxon; multifurcations allowed), from tree samples (frequencies) or a
    fitted SBN (``use_sbn``: an SBN, or True to fit EM-α to the samples; its
    probability of the constraint is estimated from ``n_sbn_draws`` seeded draws).
    The prior odds are exact (module docstring); zero (or full) posterior support
    gives a bound at the :data:`BOUND_LEVEL` level.
    """
    from ..sbn import SBN
    if isinstance(samples, SBN):
        use_sbn, tss = samples, None
    elif isinstance(samples, TreeSpaceSample):
        tss = samples
    elif isinstance(samples, (str, os.PathLike)) or (
            isinstance(samples, (list, tuple)) and samples
            and all(isinstance(s, (str, os.PathLike)) for s in samples)):
        tss = read_tree_sample(samples, burnin=burnin, taxa=taxa)
    else:
        tss = sample_from_topologies(samples)
    all_taxa = tss.taxa if tss is not None else use_sbn.taxa
    if taxa is not None and sorted(taxa) != sorted(all_taxa):
        raise TaxonMismatchError("the tree sample's taxa differ from the alignment's")
    rows, log_count, what = _splits_of_constraint(tuple(all_taxa), clade, constraint)
    n = len(all_taxa)
    log_prior = log_count - log_n_unrooted_topologies(n)
    prior = math.exp(log_prior)
    log_prior_odds = log_prior - math.log1p(-prior) if prior < 1 else math.inf
    if use_sbn is not None and use_sbn is not False:
        sbn = use_sbn if isinstance(use_sbn, SBN) else _fit_sbn(tss, "em-alpha", 1e-4)
        draws = sbn.sample(n_sbn_draws, seed=seed, rooted=False)
        has = _contains(draws.with_taxa_order(tuple(all_taxa)), rows)
        post = float(draws.counts[has].sum() / draws.counts.sum())
        post_se = math.sqrt(post * (1 - post) / n_sbn_draws)
        n_eff, source = n_sbn_draws, f"SBN ({sbn.method}), {n_sbn_draws} draws"
    else:
        has = _contains(tss.pooled, rows)
        post, post_se, how = tss.mass_and_error(np.flatnonzero(has))
        n_eff, source = sum(tss.n_draws), f"tree-sample frequencies; error: {how}"
    bound = None
    note = ""
    if post <= 0.0 or post >= 1.0:
        upper = 1.0 - (1.0 - BOUND_LEVEL) ** (1.0 / max(n_eff, 1))
        if post <= 0.0:
            bound = "upper"
            p_b = upper
            note = (f"no sampled tree has the {'clade' if clade else 'constraint'}: P(C|D) < "
                    f"{p_b:.3g} (one-sided {BOUND_LEVEL:.0%} bound from {n_eff} draws, "
                    "assuming independent draws), so the log Bayes factor is below the value given")
        else:
            bound = "lower"
            p_b = 1.0 - upper
            note = (f"every sampled tree has the {'clade' if clade else 'constraint'}: P(C|D) > "
                    f"{p_b:.6g} (one-sided {BOUND_LEVEL:.0%} bound from {n_eff} draws, "
                    "assuming independent draws), so the log Bayes factor is above the value given")
        log_bf = math.log(p_b) - math.log1p(-p_b) - log_prior_odds
        post_out = post
    else:
        log_bf = math.log(post) - math.log1p(-post) - log_prior_odds
        post_out = post
    return CladeBayesFactor(what, post_out, post_se, prior, log_count, float(log_bf), bound,
                            int(n_eff), source, note)


# ---------------------------------------------------------------------------
# the estimator interface (so that workflows that run "an estimator on a problem",
# such as phylo compare, integrate over tree space without a special case)
# ---------------------------------------------------------------------------

class TreeSpaceProblem(BaseProblem):
    """The marginal likelihood of ``model`` over unrooted topologies, given the
    alignment and a tree sample (read once, here): what :class:`TreeSpaceEstimator`
    estimates. It is not a density on one parameter vector, so the fixed-topology
    estimators refuse it (:class:`EstimatorError`).

    alignment, model (IQ-TREE string), samples (paths, a :class:`TreeSpaceSample`,
    topology samples or a fitted SBN), burnin, sample_model (the model the sample was
    made under, when known), branch_prior_rate, name.
    """

    n_branches = 0

    def __init__(self, alignment: Alignment, samples: Any, model: Any = "JC", *,
                 burnin: float | int = 0.25, sample_model: str | None = None,
                 branch_prior_rate: float = 10.0, name: str | None = None) -> None:
        super().__init__()
        from .priors import ExponentialPrior
        if not isinstance(alignment, Alignment):
            raise EstimatorError(f"expected an Alignment, got {type(alignment).__name__}")
        self.alignment = alignment
        self.model = model
        self.sample_model = sample_model
        self.tree_sample, self.sbn = _coerce_samples(samples, alignment, burnin, sample_model, None)
        self.branch_prior = ExponentialPrior(float(branch_prior_rate), 1)
        self.pattern_weights = np.asarray(alignment.weights, dtype=np.float64)
        self.name = name or f"{_normalise_model(model)} over tree space"

    def _refuse(self, *args: Any, **kwargs: Any):
        raise EstimatorError("a tree-space problem is estimated by TreeSpaceEstimator "
                             "(phylo.marginal.tree_space), not by a fixed-topology estimator")

    _log_likelihood = _log_likelihood_batch = _log_likelihood_gradient = _refuse
    _pattern_log_likelihoods = initial_point = _refuse

    def describe(self) -> dict[str, Any]:
        tss = self.tree_sample
        return {"name": self.name, "model": _normalise_model(self.model),
                "n_taxa": self.alignment.n_taxa, "n_sites": self.alignment.n_sites,
                "tree_sample": list(tss.sources) if tss is not None else "SBN",
                "sample_model": self.sample_model,
                "branch_prior_rate": float(self.branch_prior.rate)}


@dataclass
class TreeSpaceEstimator(MarginalLikelihoodEstimator):
    """:func:`tree_space_marginal` as an estimator of a :class:`TreeSpaceProblem`
    (settings as that function's; ``inner`` the fixed-topology estimator's name).
    The result's diagnostics add ``per_topology`` (list of dicts)."""

    name: ClassVar[str] = "tree-space"
    method: str = "odds"
    inner: str = DEFAULT_ESTIMATOR
    inner_settings: dict = field(default_factory=dict)
    posterior: str = "frequencies"
    target_mass: float = DEFAULT_TARGET_MASS
    max_topologies: int = DEFAULT_MAX_TOPOLOGIES
    min_count: int = MIN_TOPOLOGY_COUNT
    n_draws: int = DEFAULT_IS_DRAWS

    def warmup(self) -> "TreeSpaceEstimator":
        """One topology (or two importance draws) with the inner estimator's tiny
        settings: compiles the kernels a full run calls (phylo compare's executors)."""
        from .registry import get_estimator
        inner = get_estimator(self.inner)
        return dataclasses.replace(
            self, max_topologies=1, min_count=1, n_draws=2,
            inner_settings={**self.inner_settings, **getattr(inner, "warmup_settings", {})})

    def validate(self, problem: BaseProblem) -> None:
        if not isinstance(problem, TreeSpaceProblem):
            raise EstimatorError(f"{self.name}: needs a TreeSpaceProblem (an alignment with a "
                                 f"tree sample), got {type(problem).__name__}")

    def _estimate(self, problem, *, rng, budget, progress, **options) -> Estimate:
        seed = int(rng.integers(0, 2**31 - 1))
        res = tree_space_marginal(
            problem.alignment, problem.tree_sample if problem.tree_sample is not None else problem.sbn,
            problem.model, estimator=self.inner, estimator_settings=dict(self.inner_settings),
            method=self.method, seed=seed,
            posterior=self.posterior, sample_model=problem.sample_model,
            target_mass=self.target_mass, max_topologies=self.max_topologies,
            min_count=self.min_count, n_draws=self.n_draws,
            branch_prior_rate=float(problem.branch_prior.rate), progress=progress)
        problem.count(res.likelihood_evaluations)
        diag = dict(res.diagnostics)
        diag["per_topology"] = [row.to_dict() for row in res.per_topology]
        diag["tree_space_seed"] = seed
        return Estimate(res.log_marginal_likelihood, res.std_error, diag)


def tree_sample_spec(runs: Sequence[str | os.PathLike], *, burnin: float | int = 0.25,
                     sample_model: str | None = None) -> str:
    """The ``topology`` text of a ``topology_kind="tree-sample"`` candidate
    (:class:`phylo.marginal.workflow.CandidateSpec`): JSON of the runs (absolute
    paths), the burn-in and the model the sample was made under."""
    import json
    return json.dumps({"runs": [os.path.abspath(os.fspath(p)) for p in runs],
                       "burnin": burnin, "sample_model": sample_model}, sort_keys=True)


def tree_space_problem(alignment: Alignment, candidate, **problem_options: Any) -> TreeSpaceProblem:
    """Problem factory of :func:`phylo.marginal.workflow.compare_candidates` for
    tree-sample candidates (module level, so that it pickles to workers):
    ``problem_options`` may hold ``branch_prior_rate``."""
    import json
    if candidate.topology_kind != "tree-sample":
        from .workflow import build_problem
        return build_problem(alignment, candidate, **problem_options)
    spec = json.loads(candidate.topology)
    return TreeSpaceProblem(alignment, spec["runs"], candidate.model, burnin=spec["burnin"],
                            sample_model=spec.get("sample_model"), name=candidate.name,
                            branch_prior_rate=float(problem_options.get("branch_prior_rate", 10.0)))
