"""Posterior sampling over mutation trees and cell attachments (SCITE's ``-s -p``).

Posterior (Jahn, Kuipers & Beerenwinkel 2016): uniform prior over rooted
labelled mutation trees T and over each cell's attachment node (the root
included), rates held fixed, so

    P(T | D) ∝ Π_c (1 / (n + 1)) Σ_v P(D_c | c attached at v in T).

:func:`sample_posterior` runs several seeded Metropolis–Hastings chains
(:func:`phylo._kernels.noise.mcmc_trees`; prune-and-reattach and label-swap
moves, both symmetric) from random trees and summarises the kept trees:

- ``precedes[a, b]``: P(mutation a is a strict ancestor of b);
- ``attachment[c, v]``: P(cell c attaches at node v) (column n = the root),
  averaged exactly over attachments given each sampled tree (Rao–Blackwell);
- ``chain_probability``: P(the mutation tree is a chain, i.e. no branching);
- convergence: split-R̂ (Gelman et al., *Bayesian Data Analysis* 3rd ed.,
  §11.4) of the log-likelihood across chains, and the largest difference of a
  ``precedes`` frequency between two chains.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._kernels import noise as _k
from ..errors import PhyloError
from .inference import (_child_seeds, _model, _random_start, _validate_observed, check_seed)
from .model import ErrorModel, log_tables
from .simulate import tree_matrix

#: SCITE's default move probabilities are 0.55 prune-and-reattach, 0.4 label
#: swap, 0.05 subtree swap; without the subtree swap the first two keep their ratio
P_PRUNE = 0.55 / 0.95
#: with learn_beta, the share of steps that propose a new β, and the standard
#: deviation of the proposal on the log-odds scale
BETA_MOVE = 0.2
BETA_STEP = 0.15


@dataclass(frozen=True)
class Posterior:
    """Summary of the sampled posterior (see the module docstring).

    ``samples``: int64[chains, kept, mutations] parent arrays (root = n);
    ``log_likelihood``: float64[chains, kept], natural log of
    P(D | T) with attachments summed out under their uniform prior;
    ``precedes``: float64[n, n]; ``attachment``: float64[cells, n + 1];
    ``chain_probability``: float; ``rhat``: split-R̂ of the log-likelihood;
    ``precedes_max_diff``: largest between-chain difference of a precedes
    frequency; ``acceptance``: per-chain acceptance rate; ``map_parent`` the
    highest-likelihood sampled tree."""

    samples: np.ndarray
    log_likelihood: np.ndarray
    precedes: np.ndarray
    attachment: np.ndarray
    chain_probability: float
    rhat: float
    precedes_max_diff: float
    acceptance: np.ndarray
    map_parent: np.ndarray
    map_log_likelihood: float
    model: ErrorModel
    seed: int
    beta_samples: np.ndarray | None = None

    def beta_interval(self, level: float = 0.95) -> tuple[float, float]:
        """Equal-tailed credible interval of β (when β was sampled)."""
        if self.beta_samples is None:
            raise PhyloError("β was held fixed; sample it with learn_beta=True")
        q = (1.0 - level) / 2.0
        lo, hi = np.quantile(self.beta_samples, [q, 1.0 - q])
        return float(lo), float(hi)

    def summary(self, mutations: list[str] | None = None) -> dict:
        n = self.precedes.shape[0]
        names = mutations or [f"mut{j + 1}" for j in range(n)]
        from .inference import tree_newick
        return {
            "chains": int(self.samples.shape[0]), "kept_per_chain": int(self.samples.shape[1]),
            "rhat_log_likelihood": self.rhat, "precedes_max_diff": self.precedes_max_diff,
            "acceptance": self.acceptance.tolist(),
            "chain_probability": self.chain_probability,
            "map_tree": tree_newick(self.map_parent, names),
            "map_log_likelihood": self.map_log_likelihood,
            "error_model": self.model.as_dict(), "seed": self.seed,
            **({} if self.beta_samples is None else {
                "beta_mean": float(self.beta_samples.mean()),
                "beta_95": list(self.beta_interval(0.95)),
                "rhat_beta": split_rhat(self.beta_samples)}),
        }


def split_rhat(x: np.ndarray) -> float:
    """Split-R̂ of draws ``x`` (float[chains, draws]): each chain cut in two
    halves, R̂ = sqrt(((N−1)/N · W + B/N) / W) over the 2·chains halves."""
    x = np.asarray(x, dtype=float)
    half = x.shape[1] // 2
    if half < 2:
        raise PhyloError("split-R̂ needs at least 4 kept draws per chain")
    parts = np.concatenate([x[:, :half], x[:, half:2 * half]], axis=0)
    N = parts.shape[1]
    means = parts.mean(axis=1)
    W = parts.var(axis=1, ddof=1).mean()
    B = N * means.var(ddof=1)
    if W == 0.0:
        return 1.0 if B == 0.0 else math.inf
    return float(math.sqrt(((N - 1) / N * W + B / N) / W))


def _ancestors(parent: np.ndarray) -> np.ndarray:
    """bool[n, n]: [a, b] = a is a strict ancestor of b."""
    n = parent.size
    anc = tree_matrix(parent, np.arange(n)).astype(bool)  # [v, j]: j on root→v
    out = anc.T.copy()
    np.fill_diagonal(out, False)
    return out


def sample_posterior(observed, *, alpha: float | None = None, beta: float | None = None,
                     hom: float | None = None, cc: float | None = None,
                     model: ErrorModel | None = None, chains: int = 4,
                     iterations: int = 20_000, burn_in: int | None = None,
                     thin: int | None = None, learn_beta: bool = False,
                     beta_prior_sd: float = 0.1, seed: int | None = None) -> Posterior:
    """Sample P(tree, attachments | D) with ``chains`` seeded MCMC chains of
    ``iterations`` steps (``burn_in`` default a quarter, ``thin`` default so
    that about 1000 trees are kept per chain). Rates as in
    :func:`phylo.noise.solve` but required; the same seed gives the same
    samples. ``learn_beta`` (binary model, scalar rates): β is sampled too,
    under a Beta prior with mean ``beta`` and standard deviation
    ``beta_prior_sd`` (SCITE's ``-e`` with ``-sd``), a fifth of the steps
    being β proposals; :meth:`Posterior.beta_interval` gives its credible
    interval."""
    D = _validate_observed(observed)
    seed = check_seed(seed)
    m = _model(alpha, beta, hom, cc, model)
    if m is None:
        raise PhyloError("sampling needs the error rates (alpha and beta, or model=); "
                         "estimate them first with solve()")
    if int(chains) < 2:
        raise PhyloError(f"need at least 2 chains for the convergence diagnostics, got {chains}")
    iterations = int(iterations)
    burn_in = iterations // 4 if burn_in is None else int(burn_in)
    thin = max(1, (iterations - burn_in) // 1000) if thin is None else int(thin)
    if burn_in < 0 or thin < 1 or iterations - burn_in < 4 * thin:
        raise PhyloError(f"need burn_in >= 0, thin >= 1 and at least 4 kept draws per chain "
                         f"(iterations {iterations}, burn_in {burn_in}, thin {thin})")
    logs, penalty = log_tables(D, m)
    base, deltaT = _k.score_tables(D, logs)
    n_cells, n = D.shape
    const = float(base.sum()) - n_cells * math.log(n + 1)
    seeds = _child_seeds(seed, 2 * int(chains))
    samples, lls, acc_rate, betas = [], [], [], []
    if learn_beta:
        if m.ternary or not m.scalar or not (0.0 < float(m.fp) and 0.0 < float(m.fn) < 0.5):
            raise PhyloError("learn_beta needs the binary model with scalar rates, "
                             "0 < alpha and 0 < beta < 0.5")
        mu, sd = float(m.fn), float(beta_prior_sd)
        if not (0.0 < sd and sd * sd < mu * (1.0 - mu)):
            raise PhyloError(f"beta_prior_sd must be in (0, sqrt(beta (1 - beta))), got {sd}")
        nu = mu * (1.0 - mu) / (sd * sd) - 1.0
        prior_a, prior_b = mu * nu, (1.0 - mu) * nu
    for ch in range(int(chains)):
        start = _random_start(n, seeds[2 * ch])
        if learn_beta:
            s, sc, bt, accepted = _k.mcmc_trees_beta(
                D, float(m.fp), float(m.fn), prior_a, prior_b, start, seeds[2 * ch + 1],
                iterations, burn_in, thin, P_PRUNE, BETA_MOVE, BETA_STEP)
            betas.append(bt)
            lls.append(sc - n_cells * math.log(n + 1))
        else:
            s, sc, _, accepted = _k.mcmc_trees(deltaT, start, seeds[2 * ch + 1], iterations,
                                               burn_in, thin, P_PRUNE)
            lls.append(sc + const)
        samples.append(s)
        acc_rate.append(accepted / iterations)
    samples = np.stack(samples)
    lls = np.stack(lls)
    beta_samples = np.stack(betas) if learn_beta else None
    if penalty > 0 and np.any(lls < -0.5 * penalty):
        raise PhyloError("the chains kept trees under which some observation is impossible "
                         "(a zero rate); run longer or use positive rates")
    C, K = lls.shape
    prec_chain = np.zeros((C, n, n))
    attach = np.zeros((n_cells, n + 1))
    linear = 0
    accm = np.empty((n + 1, n_cells))
    for ch in range(C):
        for k in range(K):
            parent = samples[ch, k]
            prec_chain[ch] += _ancestors(parent)
            if learn_beta:
                _, deltaT = _k.binary_tables(D, float(m.fp), float(beta_samples[ch, k]))
            order, _, _ = _k.preorder(parent)
            _k.path_sums(deltaT, parent, order, accm)
            w = np.exp(accm - accm.max(axis=0))
            attach += (w / w.sum(axis=0)).T
            linear += int(np.bincount(parent, minlength=n + 1).max() <= 1)
    prec_chain /= K
    best = np.unravel_index(np.argmax(lls), lls.shape)
    return Posterior(samples, lls, prec_chain.mean(axis=0), attach / (C * K),
                     linear / (C * K), split_rhat(lls),
                     float(np.max(prec_chain.max(axis=0) - prec_chain.min(axis=0))),
                     np.array(acc_rate), samples[best].copy(), float(lls[best]), m, seed,
                     beta_samples)


def write_posterior(post: Posterior, prefix: str | Path, *, cells: list[str],
                    mutations: list[str], plot: bool = True) -> list[str]:
    """Write ``PREFIX.precedes.csv`` (P(row precedes column)),
    ``PREFIX.attachment.csv`` (cells × nodes, 'root' last),
    ``PREFIX.summary.json`` and, with ``plot``, ``PREFIX.precedes.png``
    (heat map and log-likelihood traces). Returns the paths written."""
    prefix = str(prefix)
    paths = []
    p = prefix + ".precedes.csv"
    with open(p, "w", encoding="utf-8") as fh:
        fh.write("precedes," + ",".join(mutations) + "\n")
        for name, row in zip(mutations, post.precedes):
            fh.write(name + "," + ",".join(f"{x:.6g}" for x in row) + "\n")
    paths.append(p)
    p = prefix + ".attachment.csv"
    with open(p, "w", encoding="utf-8") as fh:
        fh.write("cell," + ",".join(mutations) + ",root\n")
        for name, row in zip(cells, post.attachment):
            fh.write(name + "," + ",".join(f"{x:.6g}" for x in row) + "\n")
    paths.append(p)
    p = prefix + ".summary.json"
    with open(p, "w", encoding="utf-8") as fh:
        json.dump(post.summary(mutations), fh, indent=1)
        fh.write("\n")
    paths.append(p)
    if plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.8))
        im = ax1.imshow(post.precedes, vmin=0, vmax=1, cmap="viridis")
        n = len(mutations)
        if n <= 40:
            ax1.set_xticks(range(n), mutations, rotation=90, fontsize=6)
            ax1.set_yticks(range(n), mutations, fontsize=6)
        ax1.set_title("P(row mutation precedes column mutation)")
        fig.colorbar(im, ax=ax1, fraction=0.046)
        for ch, ll in enumerate(post.log_likelihood):
            ax2.plot(ll, lw=0.7, label=f"chain {ch + 1}")
        ax2.set_xlabel("kept draw")
        ax2.set_ylabel("log-likelihood (attachments summed)")
        ax2.set_title(f"split-R̂ = {post.rhat:.3f}")
        ax2.legend(fontsize=7)
        fig.tight_layout()
        p = prefix + ".precedes.png"
        fig.savefig(p, dpi=120)
        plt.close(fig)
        paths.append(p)
    return paths
