"""Numba kernels for the Bayesian noise and branching classifiers.

Conventions are those of :mod:`phylo._kernels.noise` (parent arrays rooted at
``n``, ``deltaT[j, c]`` = log-likelihood change of cell ``c`` when mutation
``j`` is on its root→attachment path, natural logs). Two per-tree quantities
are computed for the classifiers of :mod:`phylo.noise.hypothesis`:

- ``l1``: Σ_c log Σ_v exp(acc[v, c]) — the noisy-model log-likelihood of the
  tree with each cell's attachment summed out, without the per-cell baseline
  and without the uniform attachment prior (both constant over trees);
- ``l0``: Σ_c log #{v : cell c's row equals the root→v path on its observed
  entries} — the noise-free model (α = β = 0) log-likelihood, likewise without
  the attachment prior; −inf when some cell matches no node.

The noise-free count uses the same path accumulation as the likelihood: with
``mis[j, c]`` = +1 when D[c, j] is an observed 0 and −1 when it is an observed
1 or 2, ``ones[c] + Σ_{j on root→v} mis[j, c]`` is the number of observed
entries on which the path of ``v`` disagrees with the row of ``c``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .noise import _prufer_parent, path_sums, preorder, sum_score, tree_move


@njit(cache=True)
def is_chain(parent):
    """True when no node (root included) has two children."""
    n = parent.size
    kids = np.zeros(n + 1, dtype=np.int64)
    for v in range(n):
        kids[parent[v]] += 1
        if kids[parent[v]] > 1:
            return False
    return True


@njit(cache=True)
def tree_terms(deltaT, mis, ones, parent, acc, accm):
    """``(l1, l0)`` of one tree (see the module docstring); ``l1 = -inf`` for
    a cyclic parent array."""
    order, pos, size = preorder(parent)
    if size[0] < 0:
        return -np.inf, -np.inf
    path_sums(deltaT, parent, order, acc)
    path_sums(mis, parent, order, accm)
    n1, c = acc.shape
    l1 = 0.0
    l0 = 0.0
    for i in range(c):
        mx = acc[0, i]
        for v in range(1, n1):
            if acc[v, i] > mx:
                mx = acc[v, i]
        s = 0.0
        hits = 0
        for v in range(n1):
            s += np.exp(acc[v, i] - mx)
            # integer-valued floats: exact comparison is safe
            if ones[i] + accm[v, i] == 0.0:
                hits += 1
        l1 += mx + np.log(s)
        if hits == 0:
            l0 = -np.inf
        elif l0 > -np.inf:
            l0 += np.log(hits)
    return l1, l0


@njit(cache=True)
def enumerate_trees(deltaT, mis, ones):
    """``(l1, l0, chain)`` over all (n + 1)^(n − 1) rooted labelled mutation
    trees (Prüfer sequences over n + 1 labels, root n), in Prüfer order."""
    n, c = deltaT.shape
    acc = np.empty((n + 1, c))
    accm = np.empty((n + 1, c))
    if n == 1:
        parent = np.ones(1, dtype=np.int64)
        a, b = tree_terms(deltaT, mis, ones, parent, acc, accm)
        return np.array([a]), np.array([b]), np.array([True])
    L = n - 1
    total = (n + 1) ** L
    l1 = np.empty(total)
    l0 = np.empty(total)
    chain = np.empty(total, dtype=np.bool_)
    seq = np.zeros(L, dtype=np.int64)
    for t in range(total):
        parent = _prufer_parent(seq, n)
        l1[t], l0[t] = tree_terms(deltaT, mis, ones, parent, acc, accm)
        chain[t] = is_chain(parent)
        k = 0
        while k < L:
            seq[k] += 1
            if seq[k] <= n:
                break
            seq[k] = 0
            k += 1
    return l1, l0, chain


@njit(cache=True)
def samples_terms(deltaT, mis, ones, samples):
    """``(l1, l0)`` of every tree in ``samples`` (int64[k, n])."""
    k = samples.shape[0]
    n, c = deltaT.shape
    acc = np.empty((n + 1, c))
    accm = np.empty((n + 1, c))
    l1 = np.empty(k)
    l0 = np.empty(k)
    for t in range(k):
        l1[t], l0[t] = tree_terms(deltaT, mis, ones, samples[t], acc, accm)
    return l1, l0


@njit(cache=True)
def mcmc_trees_chain_prior(deltaT, mis, ones, init_parent, seed, n_iter, burn_in, thin,
                           p_prune, chain_bonus):
    """Metropolis–Hastings over mutation trees, attachments summed out, under
    the prior ∝ exp(chain_bonus) for chains and 1 for branching trees
    (chain_bonus = 0: SCITE's uniform prior). Moves as in
    :func:`phylo._kernels.noise.mcmc_trees` (prune-and-reattach, label swap;
    both symmetric). Returns ``(samples int64[k, n], chain bool[k],
    l1 float64[k], l0 float64[k], accepted)`` for the kept trees."""
    np.random.seed(seed)
    n, c = deltaT.shape
    acc = np.empty((n + 1, c))
    accm = np.empty((n + 1, c))
    parent = init_parent.copy()
    score, s0 = tree_terms(deltaT, mis, ones, parent, acc, accm)
    ch = is_chain(parent)
    k_max = 0
    if n_iter > burn_in:
        k_max = (n_iter - burn_in + thin - 1) // thin
    samples = np.empty((k_max, n), dtype=np.int64)
    chains = np.empty(k_max, dtype=np.bool_)
    l1 = np.empty(k_max)
    l0 = np.empty(k_max)
    trial = np.empty(n, dtype=np.int64)
    accepted = 0
    k = 0
    for it in range(n_iter):
        tree_move(parent, trial, p_prune)
        s, t0 = tree_terms(deltaT, mis, ones, trial, acc, accm)
        tch = is_chain(trial)
        delta = s - score
        if tch and not ch:
            delta += chain_bonus
        elif ch and not tch:
            delta -= chain_bonus
        if delta >= 0.0 or np.random.random() < np.exp(delta):
            parent[:] = trial
            score = s
            s0 = t0
            ch = tch
            accepted += 1
        if it >= burn_in and (it - burn_in) % thin == 0:
            samples[k] = parent
            chains[k] = ch
            l1[k] = score
            l0[k] = s0
            k += 1
    return samples, chains, l1, l0, accepted


# --------------------------------------------------------------------------
# infinite sites versus one parallel mutation (a second occurrence of one
# mutation): a joint chain over (class, tree, duplicated mutation)
# --------------------------------------------------------------------------

@njit(cache=True)
def _related(parent, a, b, root):
    """Is a an ancestor of b or b an ancestor of a (parent array, given root)?"""
    x = parent[b]
    while x != root:
        if x == a:
            return True
        x = parent[x]
    x = parent[a]
    while x != root:
        if x == b:
            return True
        x = parent[x]
    return False


@njit(cache=True)
def mcmc_parallel(deltaT, init_parent, seed, n_iter, burn_in, thin, p_prune, p_switch,
                  p_relabel, log_switch):
    """Reversible-jump chain over class 0 (a mutation tree on n nodes, root n)
    and class 1 (a tree on n + 1 nodes, root n + 1, whose node n is a second
    occurrence of mutation ``j``: cells below either carry j; j and node n
    never on one root path, so the likelihood is additive with ``deltaT``'s
    row j copied to row n). Moves: tree moves within the class; in class 1 a
    new uniform ``j`` (probability ``p_relabel``); with probability
    ``p_switch`` a class switch — 0 → 1 draws j uniformly and hangs node n as
    a leaf under a uniform node outside j's subtree, 1 → 0 deletes node n when
    it is a leaf. ``log_switch`` is the log of the class-1 to class-0 prior
    and attachment-prior ratio per state (see
    :func:`phylo.noise.hypothesis.parallel_mutation_probability`).
    Returns ``(classes int8[k], accepted)`` over the kept iterations."""
    np.random.seed(seed)
    n, c = deltaT.shape
    acc0 = np.empty((n + 1, c))
    acc1 = np.empty((n + 2, c))
    d1 = np.empty((n + 1, c))
    d1[:n] = deltaT
    par0 = init_parent.copy()
    par1 = np.empty(n + 1, dtype=np.int64)
    trial0 = np.empty(n, dtype=np.int64)
    trial1 = np.empty(n + 1, dtype=np.int64)
    cls = 0
    j = 0
    score = sum_score(deltaT, par0, acc0)
    k_max = 0
    if n_iter > burn_in:
        k_max = (n_iter - burn_in + thin - 1) // thin
    classes = np.empty(k_max, dtype=np.int8)
    accepted = 0
    k = 0
    for it in range(n_iter):
        r = np.random.random()
        if r < p_switch:
            if cls == 0:
                jj = np.random.randint(n)
                order, pos, size = preorder(par0)
                lo = pos[jj]
                hi = lo + size[jj]
                e = n + 1 - size[jj]                 # nodes outside j's subtree, root included
                t = np.random.randint(e) - 1
                if t < 0:
                    u = n + 1
                else:
                    u = order[t] if t < lo else order[t + (hi - lo)]
                for v in range(n):
                    par1[v] = n + 1 if par0[v] == n else par0[v]
                par1[n] = u
                d1[n] = deltaT[jj]
                s = sum_score(d1, par1, acc1)
                delta = s - score + log_switch + np.log(n * e)
                if delta >= 0.0 or np.random.random() < np.exp(delta):
                    cls = 1
                    j = jj
                    score = s
                    accepted += 1
                else:
                    d1[n] = deltaT[j]
            else:
                leaf = True
                for v in range(n):
                    if par1[v] == n:
                        leaf = False
                        break
                if leaf:
                    for v in range(n):
                        trial0[v] = n if par1[v] == n + 1 else par1[v]
                    order, pos, size = preorder(trial0)
                    e = n + 1 - size[j]
                    s = sum_score(deltaT, trial0, acc0)
                    delta = s - score - log_switch - np.log(n * e)
                    if delta >= 0.0 or np.random.random() < np.exp(delta):
                        cls = 0
                        par0[:] = trial0
                        score = s
                        accepted += 1
        elif cls == 1 and r < p_switch + p_relabel:
            jj = np.random.randint(n - 1) if n > 1 else 0
            if n > 1 and jj >= j:
                jj += 1
            if not _related(par1, n, jj, n + 1):
                d1[n] = deltaT[jj]
                s = sum_score(d1, par1, acc1)
                if s >= score or np.random.random() < np.exp(s - score):
                    j = jj
                    score = s
                    accepted += 1
                else:
                    d1[n] = deltaT[j]
        elif cls == 0:
            tree_move(par0, trial0, p_prune)
            s = sum_score(deltaT, trial0, acc0)
            if s >= score or np.random.random() < np.exp(s - score):
                par0[:] = trial0
                score = s
                accepted += 1
        else:
            tree_move(par1, trial1, p_prune)
            # the labels of j and its copy may have moved with a swap
            if not _related(trial1, n, j, n + 1):
                s = sum_score(d1, trial1, acc1)
                if s >= score or np.random.random() < np.exp(s - score):
                    par1[:] = trial1
                    score = s
                    accepted += 1
        if it >= burn_in and (it - burn_in) % thin == 0:
            classes[k] = cls
            k += 1
    return classes, accepted
