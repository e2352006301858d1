"""Fitting SBN, CCD and SRF estimators to (weighted) tree samples (Zhang & Matsen 2018,
§3; see :mod:`phylo.sbn.model` for the methods and the parameter layout)."""
from __future__ import annotations

import numpy as np

from .._kernels import sbn as _ks
from ..errors import EstimatorError
from ..trees.splits import TopologySample, n_words
from ._index import METHODS, _Index, _log, _normalize, _structures
from .model import SBN, FitInfo
from .srf import SRF


# ---------------------------------------------------------------------------
# fitting
# ---------------------------------------------------------------------------

def fit(sample: TopologySample, method: str = "em", *, alpha: float = 1e-4,
        tol: float = 1e-5, max_iter: int = 1000, min_iter: int = 50, progress=None,
        alpha_prior: str = "sa") -> "SBN | SRF":
    """Fit an estimator to a (weighted) topology sample; see the module docstring.

    sample: :class:`TopologySample` (``phylo.io.read_topologies``); weights = counts.
    method: ``srf``, ``ccd``, ``sa``, ``em``, ``em-alpha`` (unrooted samples) or
        ``rooted`` (closed-form SBN for rooted samples).
    alpha: pseudo-count scale of ``em-alpha``; tol, min_iter, max_iter: EM stops when
        the mean log-likelihood (plus log prior for em-alpha) changes by less than
        ``tol`` after at least ``min_iter`` iterations, or after ``max_iter``. The
        minimum matters: with few training topologies the SA starting point can be a
        near-stationary point that EM leaves only after tens to hundreds of
        iterations (benchmarks/results/sbn_kl.md), as the reference code's
        ``miniter = 50`` also guards against.
    progress: optional callable ``progress(iteration, objective)``.
    alpha_prior: the Dirichlet pseudo-counts of ``em-alpha`` within each parent–child
        context. ``"sa"`` (default): ``alpha`` times each child subsplit's own SA
        count; ``"uniform"`` (as the reference code zcrabbit/sbn ``models.py``,
        ``alpha * m~ / len``): the context's SA mass ``m~`` times ``alpha``, spread
        evenly over the child subsplits seen in that context. The root subsplits get
        ``alpha`` times their SA frequencies in both. The benchmark's reproduction of
        the published table uses ``"uniform"`` (benchmarks/sbn_kl.py).
    """
    method = method.lower()
    if alpha_prior not in ("uniform", "sa"):
        raise EstimatorError(f"alpha_prior must be 'uniform' or 'sa', got {alpha_prior!r}")
    if method not in METHODS:
        raise EstimatorError(f"unknown SBN method {method!r}; choose one of {', '.join(METHODS)}")
    if sample.n_topologies == 0 or sample.total <= 0:
        raise EstimatorError("the tree sample is empty (or all weights are zero)")
    if method == "srf":
        return SRF(sample)
    if method == "rooted" and not sample.rooted:
        raise EstimatorError("method 'rooted' needs rooted trees ([&R] or bifurcating roots); "
                             "use sa, em or em-alpha for unrooted samples")
    if method == "em-alpha" and not alpha > 0:
        raise EstimatorError(f"em-alpha needs alpha > 0, got {alpha}")
    if not (tol > 0) or max_iter < 1 or min_iter < 0:
        raise EstimatorError("tol must be > 0, max_iter >= 1 and min_iter >= 0")
    min_iter = min(min_iter, max_iter)
    w = sample.counts / sample.counts.sum()
    st = _structures(sample)
    ccd = method == "ccd"
    index = _Index(n_words(sample.n_taxa), ccd)
    rp, cp, ip = index.param_indices(st, insert=True)
    T, E = rp.shape
    n_root, n_cond = len(index.roots), len(index.conds)
    n_groups = len(index.groups)
    group = index.cond_group[:n_cond]
    rooted_fit = method == "rooted" or (ccd and sample.rooted)
    info = FitInfo(method, alpha if method == "em-alpha" else 0.0,
                   n_train_topologies=sample.n_topologies, n_train_trees=sample.n_trees)

    def m_step(post):
        cr = np.zeros(n_root)
        cc = np.zeros(n_cond)
        _ks.expected_counts(st.children, rp, cp, ip, post, w, cr, cc)
        return cr, cc

    if rooted_fit:
        post = np.zeros((T, E))
        post[np.arange(T), st.root_edge] = 1.0
    else:
        post = np.full((T, E), 1.0 / E)
    cr_sa, cc_sa = m_step(post)
    root_prob = cr_sa / cr_sa.sum()
    cond_prob = _normalize(cc_sa, group, n_groups)
    if method in ("em", "em-alpha"):
        a = alpha if method == "em-alpha" else 0.0
        cc_prior = cc_sa
        if a > 0 and alpha_prior == "uniform":
            mass = np.bincount(group, weights=cc_sa, minlength=n_groups)
            size = np.bincount(group, minlength=n_groups)
            cc_prior = mass[group] / size[group]
            cond_prob = _normalize(cc_sa + a * cc_prior, group, n_groups)
            root_prob = (cr_sa + a * cr_sa) / (cr_sa + a * cr_sa).sum()
        lp = np.empty((T, E))
        ll = np.empty(T)
        prev = -np.inf
        info.converged = False
        for it in range(max_iter):
            _ks.rooting_logprobs(st.children, rp, cp, ip, _log(root_prob), _log(cond_prob), lp)
            _ks.logsumexp_rows(lp, ll)
            obj = float(w @ ll)
            if a > 0:
                obj += a * float(_xlogy(cr_sa, root_prob).sum() + _xlogy(cc_prior, cond_prob).sum())
            info.objective.append(obj)
            info.n_iter = it
            if progress is not None:
                progress(it, obj)
            if it >= min_iter and abs(obj - prev) < tol:
                info.converged = True
                break
            prev = obj
            post = np.exp(lp - ll[:, None])
            cr, cc = m_step(post)
            root_prob = (cr + a * cr_sa) / (cr + a * cr_sa).sum()
            cond_prob = _normalize(cc + a * cc_prior, group, n_groups)
    return SBN(sample.taxa, index, root_prob, cond_prob, rooted=rooted_fit, info=info)


def _xlogy(x, y):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, x * np.log(np.where(y > 0, y, 1.0)) + np.where(y > 0, 0, -np.inf), 0.0)

