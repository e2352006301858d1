"""Simulating alignments along a tree under a substitution model (+Γ, +I).

Each site draws its rate class (a gamma category with probability w_c, or the +I
rate-0 class with probability pinv), a root state from π, and then each node's state
from the row P(r t_v)[state of the parent] going down the tree (pre-order).
Seeded and reproducible: the same (tree, model, n_sites, seed) gives the same
alignment.
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelError
from ..io.alignment import Alignment
from ..models import Model
from ..trees.tree import Tree


def simulate_alignment(tree: Tree, model: Model | str, n_sites: int, *, seed: int | None = None,
                       rng: np.random.Generator | None = None) -> Alignment:
    """An alignment of ``n_sites`` unambiguous sites, rows in ``tree.taxa`` order.

    ``tree`` needs branch lengths (expected substitutions per site); rooted or
    unrooted (a reversible model makes the root position irrelevant). ``+F``
    (empirical) frequencies cannot be simulated from: give them explicitly.
    """
    if isinstance(model, str):
        model = Model.from_string(model)
    if model.frequency_mode == "empirical":
        raise ModelError("cannot simulate under empirical (+F) frequencies; give +F{...}")
    if n_sites < 1:
        raise ModelError(f"n_sites must be at least 1, got {n_sites}")
    tree.validate_branch_lengths()
    if rng is None:
        rng = np.random.default_rng(seed)
    rates = model.category_rates()
    weights = model.category_weights()
    if model.pinv > 0:
        rates = np.append(rates, 0.0)
        weights = np.append(weights, model.pinv)
    cls = rng.choice(rates.shape[0], size=n_sites, p=weights / weights.sum())
    lam, v, vinv = model.eigen()
    n = tree.n_nodes
    states = np.empty((n, n_sites), dtype=np.int64)
    cum_pi = np.cumsum(model.frequencies)
    states[n - 1] = np.minimum(np.searchsorted(cum_pi, rng.random(n_sites) * cum_pi[-1], side="right"), 3)
    # P for every (branch, class): (N-1, n_classes, 4, 4), rows cumulated for inversion sampling
    t = tree.branch_lengths[:, None] * rates[None, :]
    e = np.exp(t[..., None] * lam)
    pm = np.clip(np.einsum("ik,bck,kj->bcij", v, e, vinv), 0.0, None)
    cum = np.cumsum(pm, axis=-1)
    for u in range(n - 1, tree.n_leaves - 1, -1):        # pre-order: parents first
        for c in tree.children[u, :tree.n_children[u]]:
            rows = cum[c, cls, states[u]]                  # (n_sites, 4)
            x = rng.random(n_sites) * rows[:, 3]
            states[c] = np.minimum((x[:, None] >= rows).sum(axis=1), 3)
    masks = (np.uint8(1) << states[:tree.n_leaves].astype(np.uint8)).astype(np.uint8)
    return Alignment.from_states(list(tree.taxa), masks)
