"""The prepared tree likelihood: a thin validating layer over the Numba kernels.

``TreeLikelihood(alignment, tree, model)`` is built once per (alignment, topology,
model) and then called with new branch-length vectors; all buffers are allocated at
construction so a call does no allocation beyond its result. Kernels:
:mod:`phylo._kernels.pruning` (Felsenstein 1981 pruning with rescaling) and
:mod:`phylo._kernels.gradient` (Ji et al. 2020 linear-time gradient).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from .._kernels import gradient as _grad
from .._kernels import pruning as _k
from ..errors import TreeError
from ..io.alignment import Alignment
from ..models import Model
from ..trees.tree import Tree


def _invariant_likelihoods(patterns: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """Σ_{i compatible with every tip} π_i per pattern, shape (P,) (the +I class)."""
    common = np.bitwise_and.reduce(patterns, axis=0)                     # (P,)
    bits = (common[:, None] & np.array([1, 2, 4, 8], dtype=np.uint8)) != 0
    return bits.astype(np.float64) @ pi


class TreeLikelihood:
    """Log-likelihood of an alignment on one topology under one model.

    Parameters
    ----------
    alignment: :class:`phylo.io.alignment.Alignment` (site patterns + weights).
    tree: binary :class:`phylo.trees.Tree`, rooted (2S-2 branches) or unrooted
        (2S-3); leaves are matched to alignment rows by name. Its branch lengths
        (expected substitutions per site) are the default for every method.
    model: :class:`phylo.models.Model`; ``+F`` (empirical) frequencies are counted
        from ``alignment`` here.

    All log-likelihoods are natural logs summed over sites (pattern weights = site
    counts). Branch-length vectors have shape (n_branches,) = (N-1,), indexed by
    the tree's node numbering (branch v is above node v of :attr:`tree`, which has
    its leaves in alignment order — it may differ from the tree passed in).
    """

    def __init__(self, alignment: Alignment, tree: Tree, model: Model | str, *,
                 _shared: dict | None = None) -> None:
        if isinstance(model, str):
            model = Model.from_string(model)
        model = model.with_empirical_frequencies(alignment)
        if _shared is None:
            tree = tree.with_taxa_order(alignment.taxa)
            tree.require_binary()
            if tree.n_leaves < 3 and not tree.rooted:
                raise TreeError("an unrooted tree needs at least 3 taxa", path=tree.source)
            if tree.has_branch_lengths or np.any(np.isfinite(tree.branch_lengths)):
                tree.validate_branch_lengths()
            _shared = dict(
                children=np.ascontiguousarray(tree.children[:, :3], dtype=np.int32)
                if tree.children.shape[1] >= 3 else
                np.ascontiguousarray(np.pad(tree.children, ((0, 0), (0, 3 - tree.children.shape[1])),
                                            constant_values=-1), dtype=np.int32),
                n_children=np.ascontiguousarray(tree.n_children, dtype=np.int32),
                tip_states=np.ascontiguousarray(alignment.patterns, dtype=np.uint8),
                # (S, 4, P) indicator rows: the kernels' structure-of-arrays tip partials
                tipx=np.ascontiguousarray(
                    ((alignment.patterns[:, None, :] >> np.arange(4, dtype=np.uint8)[None, :, None]) & 1)
                    .astype(np.float64)),
                pattern_weights=np.ascontiguousarray(alignment.weights, dtype=np.float64),
            )
        self._alignment = alignment
        self._tree = tree
        self._model = model
        self._shared = _shared
        self._children = _shared["children"]
        self._n_children = _shared["n_children"]
        self._tips = _shared["tip_states"]
        self._tipx = _shared["tipx"]
        self._weights = _shared["pattern_weights"]
        lam, v, vinv = model.eigen()
        self._packed = _k.pack_model(lam, v, vinv, model.category_rates(),
                                     model.category_weights(), model.frequencies, model.pinv,
                                     model.rate_matrix())
        self._inv = (_invariant_likelihoods(self._tips, model.frequencies) if model.pinv > 0
                     else np.zeros(self._tips.shape[1]))
        s, npat = self._tips.shape
        n = self._children.shape[0]
        c = model.n_categories
        self._nb = n - 1
        self._pm = np.empty((n - 1, c, 4, 4))
        self._partials = np.empty((n - s, c, 4, npat))
        self._acc = np.empty((4, npat))
        self._scale = np.empty(npat)
        self._lnl = np.empty(npat)
        self._frac = np.empty(npat)
        self._grad_buffers: tuple | None = None
        bl = np.asarray(tree.branch_lengths, dtype=np.float64)
        self._default_bl = np.ascontiguousarray(bl) if np.all(np.isfinite(bl)) else None

    # -- properties ------------------------------------------------------------
    @property
    def n_branches(self) -> int:
        return self._nb

    @property
    def tree(self) -> Tree:
        """The tree with leaves renumbered in alignment order (defines branch indices)."""
        return self._tree

    @property
    def alignment(self) -> Alignment:
        return self._alignment

    @property
    def model(self) -> Model:
        return self._model

    def with_model(self, model: Model | str) -> "TreeLikelihood":
        """The same alignment and topology under another model (tip data shared)."""
        return TreeLikelihood(self._alignment, self._tree, model, _shared=self._shared)

    # -- validation --------------------------------------------------------------
    def _bl(self, bl: Any) -> np.ndarray:
        if bl is None:
            if self._default_bl is None:
                raise TreeError("the tree has no branch lengths; pass branch_lengths",
                                path=self._tree.source)
            return self._default_bl
        bl = np.asarray(bl, dtype=np.float64)
        if bl.shape != (self._nb,):
            raise TreeError(f"expected {self._nb} branch lengths, got shape {bl.shape}")
        # one vectorised test: min >= 0 is False for NaN; the sum catches +inf
        if not (bl.min() >= 0.0 and np.isfinite(bl.sum())):
            self._tree.with_branch_lengths(np.where(np.isfinite(bl), bl, np.nan)).validate_branch_lengths()
            raise TreeError("non-finite branch length", path=self._tree.source)
        if not bl.flags.c_contiguous:
            bl = np.ascontiguousarray(bl)
        return bl

    # -- evaluation ----------------------------------------------------------------
    def log_likelihood(self, branch_lengths: Any = None) -> float:
        """ln L (natural log, summed over sites) for branch lengths (n_branches,).

        Validation is folded into the kernel (it returns NaN on a negative or
        non-finite length, and only then is the vector inspected to name the branch),
        so the checked call costs about the same as :meth:`log_likelihood_unchecked`."""
        if branch_lengths is None:
            return self.log_likelihood_unchecked(self._bl(None))
        bl = np.asarray(branch_lengths, dtype=np.float64)
        if bl.shape != (self._nb,) or not bl.flags.c_contiguous:
            bl = self._bl(bl)
        value = self.log_likelihood_unchecked(bl)
        if value != value:  # NaN: an invalid length (raises naming it)
            self._bl(bl)
        return value

    def log_likelihood_unchecked(self, branch_lengths: np.ndarray) -> float:
        """Fast path for samplers: ``branch_lengths`` must be a C-contiguous float64
        array of shape (n_branches,) (not checked; invalid lengths give NaN)."""
        return _k.log_likelihood(branch_lengths, self._children, self._n_children, self._tipx,
                                 self._packed, self._weights, self._inv, self._pm,
                                 self._partials, self._scale, self._lnl, self._frac, self._acc)

    def pattern_log_likelihoods(self, branch_lengths: Any = None) -> np.ndarray:
        """ln L_p of every site pattern, shape (n_patterns,) (not weighted)."""
        self.log_likelihood(branch_lengths)
        return self._lnl.copy()

    def site_log_likelihoods(self, branch_lengths: Any = None) -> np.ndarray:
        """ln L of every alignment site, shape (n_sites,), in alignment column order."""
        return self.pattern_log_likelihoods(branch_lengths)[self._alignment.site_pattern]

    def gradient(self, branch_lengths: Any = None) -> tuple[float, np.ndarray]:
        """(ln L, d ln L / d t) with the gradient of shape (n_branches,), per unit of
        branch length, in O(S) by post- and pre-order passes (Ji et al. 2020)."""
        return self.gradient_unchecked(self._bl(branch_lengths))

    def gradient_unchecked(self, branch_lengths: np.ndarray) -> tuple[float, np.ndarray]:
        """:meth:`gradient` without validating ``branch_lengths`` (see
        :meth:`log_likelihood_unchecked`). The returned array is new."""
        if self._grad_buffers is None:
            c, npat = self._partials.shape[1], self._partials.shape[3]
            self._grad_buffers = (np.empty_like(self._pm), np.empty((self._nb, c, 4, npat)),
                                  np.empty_like(self._partials), np.empty((8, npat)))
        dpm, hbuf, pre, work = self._grad_buffers
        grad = np.empty(self._nb)
        total = _grad.gradient(branch_lengths, self._children, self._n_children, self._tipx,
                               self._packed, self._weights, self._inv, self._pm, dpm,
                               self._partials, hbuf, pre, self._scale, self._lnl, self._frac,
                               work, grad)
        return total, grad

    def log_likelihood_batch(self, branch_lengths: Any, *, parallel: bool = True,
                             check: bool = True) -> np.ndarray:
        """ln L for each row of ``branch_lengths`` (B, n_branches) → (B,).

        With ``parallel`` the rows are split over the Numba threads
        (``numba.set_num_threads`` / ``NUMBA_NUM_THREADS``); otherwise one thread."""
        bl = np.ascontiguousarray(branch_lengths, dtype=np.float64)
        if bl.ndim != 2 or bl.shape[1] != self._nb:
            raise TreeError(f"expected branch lengths of shape (B, {self._nb}), got {bl.shape}")
        if check and bl.size and not (bl.min() >= 0.0 and np.isfinite(bl.sum())):
            row = int(np.flatnonzero(~np.all(np.isfinite(bl) & (bl >= 0), axis=1))[0])
            try:
                self._bl(bl[row])
            except TreeError as exc:
                raise TreeError(f"row {row}: {exc.detail}", path=self._tree.source) from None
        if bl.shape[0] == 0:
            return np.empty(0)
        if parallel:
            import numba
            chunks = min(bl.shape[0], numba.get_num_threads())
        else:
            chunks = 1
        if chunks == 1:
            out = np.empty(bl.shape[0])
            for r in range(bl.shape[0]):
                out[r] = self.log_likelihood_unchecked(bl[r])
            return out
        return _k.log_likelihood_batch(bl, self._children, self._n_children, self._tipx,
                                       self._packed, self._weights, self._inv, chunks)

    def __repr__(self) -> str:
        return (f"TreeLikelihood(n_taxa={self._tips.shape[0]}, n_patterns={self._tips.shape[1]}, "
                f"model={self._model.to_string()!r})")


def log_likelihood(alignment: Alignment, tree: Tree, model: Model | str) -> float:
    """ln L of ``alignment`` on ``tree`` (with its branch lengths) under ``model``."""
    return TreeLikelihood(alignment, tree, model).log_likelihood()
