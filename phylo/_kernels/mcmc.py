"""Numba MCMC loop for (power, generalised, constrained) posteriors on ℝ^d.

The loop moves an unconstrained vector ``z`` (d,) — log branch lengths first
(``n_branches`` of them), then unconstrained model parameters — with

* single-coordinate uniform random-walk proposals z_j' = z_j + λ_j (U − ½); on a
  log branch length this is exactly MrBayes' multiplier move t' = t·e^{λ(U−½)}
  (its Hastings ratio t'/t is the log-Jacobian that the z-density already holds);
* with probability 1/(d + 1), a tree-length move adding the same λ_d (U − ½) to
  every log branch length (MrBayes' TLMultiplier).

The target is  w_like · log L(z) + w_prior · log p(z) + w_ref · log q(z)  subject
to log L(z) ≥ ``ll_min``:

* power posterior (Xie et al. 2011, Lartillot & Philippe 2006): (β, 1, 0);
* generalised stepping stone (Fan et al. 2011): (β, β, 1 − β), q a product of
  Gammas on branch lengths / normals on other coordinates;
* nested sampling's constrained prior (Skilling 2006): (0, 1, 0) with ``ll_min``.

Randomness: the caller passes ``uniforms`` (n, 3) drawn from its own
``numpy.random.Generator``; the kernel draws nothing itself, so a run is a
deterministic function of its inputs (that is what makes checkpoint/resume exact)
and ``run_chain.py_func`` runs the same algorithm on plain Python callables.

Adaptation (only when ``adapt``): Robbins–Monro on log λ_j towards acceptance
0.44 for single coordinates and 0.234 for the joint move (Roberts & Rosenthal 2009).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from . import blocks as _bk
from . import models as _km
from .densities import exp_prior_t, log_reference, model_log_prior
from .pruning import MODEL_PI

#: Bounds of the adapted proposal widths (log scale units).
MIN_SCALE = 1e-5
MAX_SCALE = 20.0


# Not cached on disk: its first argument is a Numba dispatcher (the problem's
# compiled log-likelihood), and on-disk caches of functions over dispatcher types
# can hand one process machine code compiled for another dispatcher (segfaults).
# Compiling costs ~2-3 s once per process and log-likelihood.
@njit(cache=False)
def run_chain(loglik, loglik_args, logprior, logprior_args,
              z, ll, lp, w_like, w_prior, w_ref, ref_kind, ref_a, ref_b, ll_min,
              n_branches, uniforms, scales, accepts, tries, adapt, thin,
              out_z, out_ll, out_lp):
    """Run ``uniforms.shape[0]`` generations in place.

    z (d,) current state (updated); ll, lp its log-likelihood and log-prior;
    scales/accepts/tries (d + 1,) per move (index d = joint branch move), updated;
    every ``thin`` generations the state goes to out_ll/out_lp (n // thin,) and, when
    out_z has rows, out_z (n // thin, d). Returns (ll, lp). One likelihood
    evaluation per generation.
    """
    d = z.shape[0]
    n = uniforms.shape[0]
    store_z = out_z.shape[0] > 0
    lr = 0.0
    if w_ref != 0.0:
        lr = log_reference(z, ref_kind, ref_a, ref_b)
    cur = w_like * ll + w_prior * lp + w_ref * lr
    zp = z.copy()
    p_all = 1.0 / (d + 1.0) if n_branches > 1 else 0.0
    k = 0
    for it in range(n):
        u0 = uniforms[it, 0]
        u1 = uniforms[it, 1]
        u2 = uniforms[it, 2]
        if u0 < p_all:
            j = d
            delta = scales[d] * (u1 - 0.5)
            for i in range(n_branches):
                zp[i] = z[i] + delta
        else:
            j = int((u0 - p_all) / (1.0 - p_all) * d)
            if j >= d:
                j = d - 1
            zp[j] = z[j] + scales[j] * (u1 - 0.5)
        llp = loglik(zp, loglik_args)
        lpp = logprior(zp, logprior_args)
        lrp = 0.0
        if w_ref != 0.0:
            lrp = log_reference(zp, ref_kind, ref_a, ref_b)
        new = w_like * llp + w_prior * lpp + w_ref * lrp
        ok = (llp >= ll_min) and (new == new) and (math.log(u2) < new - cur)
        tries[j] += 1
        if ok:
            accepts[j] += 1
            ll = llp
            lp = lpp
            lr = lrp
            cur = new
            if j == d:
                for i in range(n_branches):
                    z[i] = zp[i]
            else:
                z[j] = zp[j]
        else:
            if j == d:
                for i in range(n_branches):
                    zp[i] = z[i]
            else:
                zp[j] = z[j]
        if adapt:
            target = 0.234 if j == d else 0.44
            gamma = 10.0 / math.sqrt(tries[j] + 100.0)
            s = scales[j] * math.exp(gamma * ((1.0 if ok else 0.0) - target))
            if s < MIN_SCALE:
                s = MIN_SCALE
            if s > MAX_SCALE:
                s = MAX_SCALE
            scales[j] = s
        if (it + 1) % thin == 0 and k < out_ll.shape[0]:
            out_ll[k] = ll
            out_lp[k] = lp
            if store_z:
                for i in range(d):
                    out_z[k, i] = z[i]
            k += 1
    return ll, lp


@njit(cache=True)
def run_chain_tree(targs, prior_rate, mfree, mfixed, mprior, inv_basis, model_prop, inv_prop,
                   z, ll, lp, w_like, w_prior, w_ref, ref_kind, ref_a, ref_b, ll_min, n_branches,
                   uniforms, scales, accepts, tries, adapt, thin, out_z, out_ll, out_lp):
    """:func:`run_chain` for the tree likelihood with i.i.d. Exponential(``prior_rate``)
    branch-length priors and z = (log t, u), u the unconstrained model parameters, with
    incremental likelihood updates: a single-branch move recomputes P of that branch
    and the partials on its path to the root into spare buffers (reject = flip back,
    :func:`phylo._kernels.pruning.propose_branch`), as MrBayes does; the tree-length
    move recomputes everything. The state is first evaluated in full, so a call's
    result depends only on its inputs (the incremental value equals the full one bit
    for bit). ``targs`` = :meth:`phylo.likelihood.TreeLikelihood.kernel_arguments`
    (a :class:`phylo._kernels.state.KernelArguments`, read by field name) holding the
    model at u = z[n_branches:] (its ``data.model`` and, with +I, ``data.inv`` are
    the caller's private copies: an accepted model move overwrites them);
    the loop evaluates on its private layout (the tree re-rooted at its median node,
    which shortens the mean path from a branch to the root) and maps branch j of z to
    the layout's branch ``bmap[j]``. Same proposals, acceptance rule and adaptation as
    :func:`run_chain`. With a pattern-blocked state (3-D tip codes) every evaluation and
    proposal runs pattern-parallel (:mod:`phylo._kernels.blocks`; the calls below pick
    the kernels when this loop is compiled) on the caller's Numba thread count.

    Model-parameter moves (coordinates ≥ n_branches; none when d = n_branches) are made
    here too: the proposal's packed model is built in compiled code
    (:func:`phylo._kernels.models.packed_from_unconstrained` from ``mfree``/``mfixed``,
    into ``model_prop``; +I likelihoods Σ π_i ``inv_basis[i]`` into ``inv_prop`` when
    mfixed says +I), every transition matrix and partial is recomputed into the spare
    buffers (:func:`phylo._kernels.pruning.propose_all` with the proposed model; reject
    = flip back), and the model prior is :func:`phylo._kernels.densities.model_log_prior`
    with parameters ``mprior``. Returns (ll, lp)."""
    tipx = targs.data.tipx
    tipc = targs.data.tipc
    model = targs.data.model
    pweights = targs.data.weights
    inv_lik = targs.data.inv
    st = targs.state
    pm = st.pm
    ptab = st.ptab
    partials = st.partials
    cur = st.cur
    scnt = st.scnt
    sflag = st.sflag
    sbound = st.sbound
    lnl = st.lnl
    frac = st.frac
    acc = st.acc
    escale = st.escale
    pm_save = targs.incremental.pm_save
    path = targs.incremental.path
    pm_all_save = targs.incremental.pm_all_save
    children = targs.layout.children           # the median-rooted layout
    n_children = targs.layout.n_children
    parent = targs.layout.parent
    bmap = targs.layout.bmap
    n_leaves = ptab.shape[0]
    d = z.shape[0]
    n = uniforms.shape[0]
    store_z = out_z.shape[0] > 0
    has_inv = d > n_branches and mfree[_km.FREE_PINV] != 0
    lp_model = 0.0
    if d > n_branches:
        lp_model = model_log_prior(z[n_branches:], mfree, mprior)
    bl = np.empty(n_branches)
    # tp[i] = exp(zp[i]) of the proposal (user order), kept in step with zp, so that the
    # prior needs no exp: exp_prior_t gives exp_prior_z's value bit for bit
    tp = np.empty(n_branches)
    tsave = np.empty(n_branches)
    for i in range(n_branches):
        tp[i] = math.exp(z[i])
        bl[bmap[i]] = tp[i]
    _bk.any_log_likelihood(bl, children, n_children, tipx, tipc, model, pweights, inv_lik,
                           pm, ptab, partials, cur, scnt, sflag, sbound, lnl, frac, acc,
                           escale)
    lr = 0.0
    if w_ref != 0.0:
        lr = log_reference(z, ref_kind, ref_a, ref_b)
    cur_target = w_like * ll + w_prior * lp + w_ref * lr
    zp = z.copy()
    p_all = 1.0 / (d + 1.0) if n_branches > 1 else 0.0
    k = 0
    lpm_p = lp_model
    for it in range(n):
        u0 = uniforms[it, 0]
        u1 = uniforms[it, 1]
        u2 = uniforms[it, 2]
        valid = True
        if u0 < p_all:
            j = d
            delta = scales[d] * (u1 - 0.5)
            for i in range(n_branches):
                zp[i] = z[i] + delta
                t = math.exp(zp[i])
                tsave[i] = tp[i]
                tp[i] = t
                bl[bmap[i]] = t
                if not (t >= 0.0 and t < np.inf):
                    valid = False
            if valid:
                llp = _bk.any_propose_all(bl, children, n_children, tipx, tipc, model,
                                          pweights, inv_lik, pm, ptab, partials, cur, scnt,
                                          sflag, sbound, lnl, frac, acc, escale, pm_all_save)
            else:
                llp = np.nan
        else:
            j = int((u0 - p_all) / (1.0 - p_all) * d)
            if j >= d:
                j = d - 1
            zp[j] = z[j] + scales[j] * (u1 - 0.5)
            if j >= n_branches:         # a model parameter: every P changes
                told = tp[0]
                valid = _km.packed_from_unconstrained(zp[n_branches:], mfree, mfixed,
                                                      model_prop)
                if valid:
                    # bl is kept only by the tree-length move: refresh it (single-branch
                    # moves change tp alone)
                    for i in range(n_branches):
                        bl[bmap[i]] = tp[i]
                    if has_inv:
                        _km.invariant_likelihoods_into(
                            model_prop[MODEL_PI:MODEL_PI + 4], inv_basis,
                            inv_prop.reshape(inv_prop.size))
                    llp = _bk.any_propose_all(bl, children, n_children, tipx, tipc,
                                              model_prop, pweights, inv_prop, pm, ptab,
                                              partials, cur, scnt, sflag, sbound, lnl, frac,
                                              acc, escale, pm_all_save)
                    lpm_p = model_log_prior(zp[n_branches:], mfree, mprior)
                else:
                    llp = np.nan
                    lpm_p = np.nan
            else:
                t = math.exp(zp[j])
                told = tp[j]
                tp[j] = t
                if t >= 0.0 and t < np.inf:
                    llp = _bk.any_propose_branch(bmap[j], t, children, n_children, parent,
                                                 tipx, tipc, model, pweights, inv_lik, pm,
                                                 ptab, partials, cur, scnt, sflag, sbound,
                                                 lnl, frac, acc, escale, pm_save, path)
                else:
                    valid = False
                    llp = np.nan
        model_move = n_branches <= j < d
        lpp = exp_prior_t(zp, tp, prior_rate, n_branches) + (lpm_p if model_move else lp_model)
        lrp = 0.0
        if w_ref != 0.0:
            lrp = log_reference(zp, ref_kind, ref_a, ref_b)
        new = w_like * llp + w_prior * lpp + w_ref * lrp
        ok = (llp >= ll_min) and (new == new) and (math.log(u2) < new - cur_target)
        tries[j] += 1
        if ok:
            accepts[j] += 1
            ll = llp
            lp = lpp
            lr = lrp
            cur_target = new
            if j == d:
                for i in range(n_branches):
                    z[i] = zp[i]
            else:
                z[j] = zp[j]
                if model_move:          # the proposed model becomes the model
                    model[:] = model_prop
                    if has_inv:
                        inv_lik[...] = inv_prop
                    lp_model = lpm_p
        else:
            if j == d:
                if valid:
                    _bk.any_revert_all(model, pm, ptab, cur, pm_all_save)
                for i in range(n_branches):
                    zp[i] = z[i]
                    tp[i] = tsave[i]
            elif model_move:
                if valid:
                    _bk.any_revert_all(model, pm, ptab, cur, pm_all_save)
                zp[j] = z[j]
            else:
                if valid:
                    _bk.any_revert_branch(bmap[j], n_leaves, model, pm, ptab, cur, pm_save, path)
                zp[j] = z[j]
                tp[j] = told
        if adapt:
            target = 0.234 if j == d else 0.44
            gamma = 10.0 / math.sqrt(tries[j] + 100.0)
            s = scales[j] * math.exp(gamma * ((1.0 if ok else 0.0) - target))
            if s < MIN_SCALE:
                s = MIN_SCALE
            if s > MAX_SCALE:
                s = MAX_SCALE
            scales[j] = s
        if (it + 1) % thin == 0 and k < out_ll.shape[0]:
            out_ll[k] = ll
            out_lp[k] = lp
            if store_z:
                for i in range(d):
                    out_z[k, i] = z[i]
            k += 1
    return ll, lp
