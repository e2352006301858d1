"""Splits and clades as multi-word bitsets; topology identity and counting.

Conventions
-----------
* A clade (rooted) or split (unrooted bipartition) over ``S`` taxa is a row of
  ``W = ceil(S/64)`` uint64 words; taxon ``i`` (index in ``taxa``) is bit ``i % 64`` of
  word ``i // 64``. Arrays of them have shape ``(n, W)``. Works for any ``S``.
* Unrooted splits are normalised to the side that does not contain taxon 0; the
  trivial splits (one taxon against the rest) are excluded from topology keys.
* A topology's *key* is its sorted non-trivial splits (unrooted) or non-root,
  non-leaf clades (rooted), shape ``(S-2, W)`` padded with zero rows; two trees have
  the same topology iff their keys are equal byte for byte.
* :class:`RowTable` is a hash table from such rows (any number of words) to dense
  integer ids, used to count topologies, splits, clades and subsplits in linear time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from .._kernels import splits as _k
from ..errors import PhyloError, TaxonMismatchError
from .tree import Tree


def n_words(n_taxa: int) -> int:
    """Number of uint64 words of a bitset over ``n_taxa`` taxa."""
    return max(1, (int(n_taxa) + 63) // 64)


def bitset(indices: Iterable[int], n_taxa: int) -> np.ndarray:
    """Bitset row (W,) uint64 with the given taxon indices set."""
    out = np.zeros(n_words(n_taxa), dtype=np.uint64)
    for i in indices:
        out[i // 64] |= np.uint64(1) << np.uint64(i % 64)
    return out


def full_bitset(n_taxa: int) -> np.ndarray:
    return bitset(range(n_taxa), n_taxa)


def members(row: np.ndarray, n_taxa: int | None = None) -> list[int]:
    """Taxon indices set in one bitset row."""
    out = []
    for w, word in enumerate(np.asarray(row, dtype=np.uint64)):
        x = int(word)
        while x:
            low = x & -x
            i = low.bit_length() - 1
            out.append(w * 64 + i)
            x ^= low
    if n_taxa is not None:
        out = [i for i in out if i < n_taxa]
    return out


def popcount(rows: np.ndarray) -> np.ndarray:
    """Number of taxa in each row of an (n, W) bitset array."""
    rows = np.ascontiguousarray(rows, dtype=np.uint64)
    as_bytes = rows.view(np.uint8).reshape(rows.shape[0], -1)
    return np.unpackbits(as_bytes, axis=1).sum(axis=1)


def normalize_splits(rows: np.ndarray, n_taxa: int) -> np.ndarray:
    """Unrooted normalisation: complement rows that contain taxon 0."""
    rows = np.array(rows, dtype=np.uint64, copy=True)
    full = full_bitset(n_taxa)
    flip = (rows[:, 0] & np.uint64(1)) != 0
    rows[flip] ^= full
    return rows


def row_keys(rows: np.ndarray) -> list[bytes]:
    """Hashable bytes for each row of a bitset (or key) array."""
    rows = np.ascontiguousarray(rows)
    flat = rows.reshape(rows.shape[0], -1)
    return [r.tobytes() for r in flat]


def tree_clades(tree: Tree) -> np.ndarray:
    """Clade bitsets of every node of a :class:`Tree`, shape (n_nodes, W)."""
    s = tree.n_leaves
    out = np.zeros((tree.n_nodes, n_words(s)), dtype=np.uint64)
    _k.node_clades(tree.parent.astype(np.int64), tree.n_nodes, s, n_words(s), out)
    return out


def tree_splits(tree: Tree, *, rooted: bool | None = None) -> np.ndarray:
    """Non-trivial splits (unrooted, normalised) or clades (rooted) of a tree, sorted.

    Shape (m, W): m = S-3 for an unrooted binary tree, S-2 clades for a rooted one.
    """
    rooted = tree.rooted if rooted is None else rooted
    key = topology_key_of_parent(tree.parent, tree.n_leaves, rooted=rooted)
    nz = np.any(key != 0, axis=1)
    return key[nz]


def topology_key_of_parent(parent: np.ndarray, n_taxa: int, *, rooted: bool) -> np.ndarray:
    """Topology key (S-2, W) of one post-order parent array."""
    s = int(n_taxa)
    w = n_words(s)
    par = np.full((1, 2 * s - 1), -2, dtype=np.int32)
    par[0, :len(parent)] = parent
    out = np.zeros((1, max(s - 2, 1), w), dtype=np.uint64)
    _k.topology_keys(par, np.array([len(parent)], dtype=np.int32), s, w, bool(rooted), out)
    return out[0]


class RowTable:
    """Hash table from uint64 rows of ``K`` words to dense ids ``0, 1, 2, ...``.

    ``add(rows)`` inserts (returns ids), ``get(rows)`` looks up (-1 when absent),
    ``keys`` holds the distinct rows in id order. Grows automatically.
    """

    def __init__(self, n_words_per_row: int, capacity: int = 1024) -> None:
        self.k = int(n_words_per_row)
        cap = 1
        while cap < 2 * capacity:
            cap *= 2
        self._table_keys = np.zeros((cap, self.k), dtype=np.uint64)
        self._table_ids = np.full(cap, -1, dtype=np.int64)
        self._rows = np.zeros((max(capacity, 16), self.k), dtype=np.uint64)
        self.n = 0

    def __len__(self) -> int:
        return self.n

    @property
    def keys(self) -> np.ndarray:
        return self._rows[:self.n]

    def _grow(self, need: int) -> None:
        cap = self._table_ids.shape[0]
        if 2 * need <= cap:
            return
        while cap < 2 * need:
            cap *= 2
        old = self.keys.copy()
        self._table_keys = np.zeros((cap, self.k), dtype=np.uint64)
        self._table_ids = np.full(cap, -1, dtype=np.int64)
        ids = np.empty(old.shape[0], dtype=np.int64)
        _k.hash_insert_rows(old, self._table_keys, self._table_ids, 0, True, ids)

    def add(self, rows: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(rows, dtype=np.uint64).reshape(-1, self.k)
        self._grow(self.n + rows.shape[0])
        ids = np.empty(rows.shape[0], dtype=np.int64)
        n_new = _k.hash_insert_rows(rows, self._table_keys, self._table_ids, self.n, True, ids)
        if n_new > self.n:
            if n_new > self._rows.shape[0]:
                grown = np.zeros((max(n_new, 2 * self._rows.shape[0]), self.k), dtype=np.uint64)
                grown[:self.n] = self._rows[:self.n]
                self._rows = grown
            fresh = ids >= self.n
            self._rows[ids[fresh]] = rows[fresh]
            self.n = int(n_new)
        return ids

    def get(self, rows: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(rows, dtype=np.uint64).reshape(-1, self.k)
        ids = np.empty(rows.shape[0], dtype=np.int64)
        _k.hash_insert_rows(rows, self._table_keys, self._table_ids, self.n, False, ids)
        return ids


@dataclass
class TopologySample:
    """Distinct topologies of a tree sample with their (weighted) counts.

    taxa: leaf order of every array. rooted: whether keys are rooted clades.
    keys: (U, S-2, W) uint64 canonical keys (see module docstring).
    parents: (U, 2S-1) int32 post-order parent array of the first tree of each
        topology (``-2`` padding after ``n_nodes[u]`` entries).
    counts: (U,) float64 summed tree weights (1 per tree unless the file carries
        ``[&W w]`` weights, e.g. MrBayes ``.trprobs``).
    n_trees: trees read (after burn-in and thinning). sources: the files read.
    """

    taxa: tuple[str, ...]
    rooted: bool
    keys: np.ndarray
    parents: np.ndarray
    n_nodes: np.ndarray
    counts: np.ndarray
    n_trees: int = 0
    sources: tuple[str, ...] = field(default=())

    @property
    def n_taxa(self) -> int:
        return len(self.taxa)

    @property
    def n_topologies(self) -> int:
        return int(self.counts.shape[0])

    @property
    def total(self) -> float:
        return float(self.counts.sum())

    @property
    def probabilities(self) -> np.ndarray:
        """Relative frequencies (counts / total), shape (U,)."""
        return self.counts / self.counts.sum()

    def tree(self, u: int) -> Tree:
        """Topology ``u`` as a :class:`Tree` (no branch lengths)."""
        n = int(self.n_nodes[u])
        t = Tree.from_parent_array(self.parents[u, :n].astype(np.int64), None, self.taxa,
                                   rooted=self.rooted, weight=float(self.counts[u]))
        if not self.rooted and t.n_children[t.root] == 2 and t.n_leaves > 2:
            t = t.unrooted()
        return t

    def order(self) -> np.ndarray:
        """Topology indices by decreasing count (ties: first seen first)."""
        return np.argsort(-self.counts, kind="stable")

    def as_unrooted(self) -> "TopologySample":
        """The same sample with rooted trees collapsed to unrooted topologies."""
        if not self.rooted:
            return self
        return topology_sample_from_parents(self.parents, self.n_nodes, self.counts,
                                            self.taxa, rooted=False, n_trees=self.n_trees,
                                            sources=self.sources)

    def with_taxa_order(self, taxa: Sequence[str]) -> "TopologySample":
        """Relabel the leaves into another taxon order (same taxon set)."""
        taxa = tuple(taxa)
        if taxa == self.taxa:
            return self
        if sorted(taxa) != sorted(self.taxa):
            raise TaxonMismatchError("the samples have different taxa: "
                                     f"{sorted(set(taxa) ^ set(self.taxa))[:5]}")
        pos = {t: i for i, t in enumerate(taxa)}
        perm = np.array([pos[t] for t in self.taxa])
        s = len(taxa)
        parents = self.parents.copy()
        parents[:, perm] = self.parents[:, :s]
        return topology_sample_from_parents(parents, self.n_nodes, self.counts, taxa,
                                            rooted=self.rooted, n_trees=self.n_trees,
                                            sources=self.sources)

    @classmethod
    def concatenate(cls, samples: Sequence["TopologySample"], *,
                    weights: Sequence[float] | None = None) -> "TopologySample":
        """Pool samples (same taxa), optionally scaling each one's counts."""
        if not samples:
            raise PhyloError("no samples to pool")
        taxa = samples[0].taxa
        parts = [s.with_taxa_order(taxa) for s in samples]
        scale = [1.0] * len(parts) if weights is None else list(weights)
        parents = np.concatenate([p.parents for p in parts])
        n_nodes = np.concatenate([p.n_nodes for p in parts])
        counts = np.concatenate([p.counts * f for p, f in zip(parts, scale)])
        return topology_sample_from_parents(parents, n_nodes, counts, taxa,
                                            rooted=samples[0].rooted,
                                            n_trees=sum(p.n_trees for p in parts),
                                            sources=tuple(x for p in parts for x in p.sources))


def topology_sample_from_parents(parents: np.ndarray, n_nodes: np.ndarray, counts: np.ndarray,
                                 taxa: Sequence[str], *, rooted: bool, n_trees: int | None = None,
                                 sources: tuple[str, ...] = ()) -> TopologySample:
    """Deduplicate topologies given as parent arrays (see :class:`TopologySample`)."""
    taxa = tuple(taxa)
    s = len(taxa)
    w = n_words(s)
    parents = np.ascontiguousarray(parents, dtype=np.int32)
    n_nodes = np.ascontiguousarray(n_nodes, dtype=np.int32)
    keys = np.zeros((parents.shape[0], max(s - 2, 1), w), dtype=np.uint64)
    _k.topology_keys(parents, n_nodes, s, w, bool(rooted), keys)
    table = RowTable(keys.shape[1] * w, capacity=max(16, parents.shape[0]))
    ids = table.add(keys.reshape(keys.shape[0], -1))
    u = len(table)
    first = np.full(u, parents.shape[0], dtype=np.int64)
    np.minimum.at(first, ids, np.arange(parents.shape[0]))
    tot = np.bincount(ids, weights=np.asarray(counts, dtype=np.float64), minlength=u)
    return TopologySample(taxa, bool(rooted), keys[first], parents[first], n_nodes[first],
                          tot, n_trees=int(parents.shape[0] if n_trees is None else n_trees),
                          sources=sources)


def topology_sample_from_trees(trees: Iterable[Tree], *, taxa: Sequence[str] | None = None,
                               rooted: bool | None = None) -> TopologySample:
    """Build a :class:`TopologySample` from :class:`Tree` objects (weights → counts)."""
    trees = list(trees)
    if not trees:
        raise PhyloError("no trees")
    taxa = tuple(taxa) if taxa is not None else trees[0].taxa
    rooted = trees[0].rooted if rooted is None else rooted
    s = len(taxa)
    parents = np.full((len(trees), 2 * s - 1), -2, dtype=np.int32)
    n_nodes = np.zeros(len(trees), dtype=np.int32)
    for i, t in enumerate(trees):
        t = t.with_taxa_order(taxa)
        parents[i, :t.n_nodes] = t.parent
        n_nodes[i] = t.n_nodes
    counts = np.array([t.weight for t in trees], dtype=np.float64)
    return topology_sample_from_parents(parents, n_nodes, counts, taxa, rooted=bool(rooted))


def split_frequencies(sample: TopologySample) -> tuple[np.ndarray, np.ndarray]:
    """Distinct non-trivial splits (unrooted) and their frequencies.

    Returns ``(splits (k, W) uint64, freq (k,))``, frequency = summed weight of the
    trees containing the split / total weight. Rooted samples are unrooted first.
    """
    smp = sample.as_unrooted()
    s = smp.n_taxa
    w = n_words(s)
    flat = np.zeros((smp.keys.shape[0] * smp.keys.shape[1], w), dtype=np.uint64)
    fw = np.zeros(flat.shape[0], dtype=np.float64)
    k = _k.accumulate_splits(smp.keys, smp.counts.astype(np.float64), s, flat, fw)
    table = RowTable(w, capacity=max(16, k))
    ids = table.add(flat[:k])
    freq = np.bincount(ids, weights=fw[:k], minlength=len(table)) / smp.total
    return table.keys.copy(), freq


def split_to_string(row: np.ndarray, n_taxa: int) -> str:
    """MrBayes-style pattern: ``*`` for the taxa in the split, ``.`` elsewhere."""
    on = set(members(row, n_taxa))
    return "".join("*" if i in on else "." for i in range(n_taxa))
