"""Splits and clades as multi-word bitsets; topology identity and counting.

Conventions
-----------
* A clade (rooted) or split (unrooted bipartition) over ``S`` taxa is a row of
  ``W = ceil(S/64)`` uint64 words; taxon ``i`` (index in ``taxa``) is bit ``i % 64`` of
  word ``i // 64``. Arrays of them have shape ``(n, W)``. Works for any ``S``.
* Unrooted splits are normalised to the side that does not contain taxon 0; the
  trivial splits (one taxon against the rest) are excluded from topology keys.
* A topology's *key* is its canonical parent array (:func:`canonical_keys`: rooted at
  the root, or unrooted at the neighbour of taxon 0; children ordered by their
  smallest taxon; 2S int32 = S uint64 words): two trees have the same topology iff
  their keys are equal. O(S) memory per topology, so samples of 10⁴ taxa fit; split
  bitsets (W words each) are made only for the splits themselves
  (:func:`split_frequencies`).
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
    ``keys`` holds the distinct rows in id order. Grows automatically; each distinct
    row is stored once (the open-addressing table holds only ids), so memory is
    ``K * 8`` bytes per distinct row plus 16-32 bytes of table.
    """

    def __init__(self, n_words_per_row: int, capacity: int = 1024) -> None:
        self.k = int(n_words_per_row)
        capacity = max(1, int(capacity))
        cap = 1
        while cap < 2 * capacity:
            cap *= 2
        self._table_ids = np.full(cap, -1, dtype=np.int64)
        self._rows = np.zeros((capacity, self.k), dtype=np.uint64)
        self.n = 0

    def __len__(self) -> int:
        return self.n

    @property
    def keys(self) -> np.ndarray:
        return self._rows[:self.n]

    @property
    def nbytes(self) -> int:
        return int(self._rows.nbytes + self._table_ids.nbytes)

    def _grow(self, need: int) -> None:
        if need > self._rows.shape[0]:
            grown = np.zeros((max(need, 2 * self._rows.shape[0]), self.k), dtype=np.uint64)
            grown[:self.n] = self._rows[:self.n]
            self._rows = grown
        cap = self._table_ids.shape[0]
        if 2 * need <= cap:
            return
        while cap < 2 * need:
            cap *= 2
        self._table_ids = np.full(cap, -1, dtype=np.int64)
        _k.rehash(self._rows, self.n, self._table_ids)

    def add(self, rows: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(rows, dtype=np.uint64).reshape(-1, self.k)
        self._grow(self.n + rows.shape[0])
        ids = np.empty(rows.shape[0], dtype=np.int64)
        self.n = int(_k.hash_insert_rows(rows, self._rows, self._table_ids, self.n, True, ids))
        return ids

    def get(self, rows: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(rows, dtype=np.uint64).reshape(-1, self.k)
        ids = np.empty(rows.shape[0], dtype=np.int64)
        _k.hash_insert_rows(rows, self._rows, self._table_ids, self.n, False, ids)
        return ids


def canonical_keys(parents: np.ndarray, n_nodes: np.ndarray, n_taxa: int, *,
                   rooted: bool) -> np.ndarray:
    """Topology keys (T, L) uint64 of post-order parent arrays: the canonical parent
    arrays of :func:`phylo._kernels.splits.canonical_topologies` (int32, padded to an
    even length) seen as uint64 words; equal keys iff equal topologies. ``L = S``."""
    s = int(n_taxa)
    parents = np.ascontiguousarray(parents, dtype=np.int32)
    width = 2 * s                      # 2S-1 entries, one more of padding
    canon = np.full((parents.shape[0], width), -2, dtype=np.int32)
    if parents.shape[1] > width:
        raise PhyloError(f"parent arrays of {parents.shape[1]} entries for {s} taxa")
    padded = np.full((parents.shape[0], width), -2, dtype=np.int32)
    padded[:, :parents.shape[1]] = parents
    _k.canonical_topologies(padded, np.ascontiguousarray(n_nodes, dtype=np.int32), s,
                            bool(rooted), canon)
    return canon.view(np.uint64)


@dataclass
class TopologySample:
    """Distinct topologies of a tree sample with their (weighted) counts.

    taxa: leaf order of every array. rooted: whether keys are rooted clades.
    keys: (U, S) uint64 canonical topology keys (see module docstring).
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
    parents = np.ascontiguousarray(parents, dtype=np.int32)
    n_nodes = np.ascontiguousarray(n_nodes, dtype=np.int32)
    keys = canonical_keys(parents, n_nodes, s, rooted=bool(rooted))
    table = RowTable(keys.shape[1], capacity=max(16, min(parents.shape[0],
                                                        (64 << 20) // (8 * keys.shape[1]))))
    ids = table.add(keys)
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


SPLIT_BYTES = 64 << 20   # scratch per kernel call (bounded memory at any S)
_ZOBRIST_SEED = 20261130  # fixed: split fingerprints are the same in every run


def _zobrist(n_taxa: int) -> tuple[np.ndarray, np.ndarray]:
    """Two lanes of random 64-bit words, one per taxon (fixed seed)."""
    rng = np.random.default_rng([_ZOBRIST_SEED, int(n_taxa)])
    top = np.iinfo(np.uint64).max
    return (rng.integers(0, top, size=n_taxa, dtype=np.uint64, endpoint=True),
            rng.integers(0, top, size=n_taxa, dtype=np.uint64, endpoint=True))


@dataclass
class SplitCounts:
    """Distinct non-trivial splits of an unrooted sample, identified by fingerprints.

    fingerprints (k, 2) uint64: per split, the sums (mod 2**64) of two random words per
    taxon over the side without taxon 0 (Zobrist hashing; two different splits share
    both lanes with probability 2**-128, so a table of 10⁶ splits has a collision with
    probability below 1e-26). weight (k,): summed weight of the trees with the split.
    ref (k, 2) int64: (topology of ``sample``, canonical node) of its first occurrence,
    from which :meth:`bitsets` rebuilds exact bitsets. Memory: 40 bytes per distinct
    split (a W-word bitset is 1,256 bytes at 10⁴ taxa), so 10⁶ splits take 40 MB.
    """

    sample: TopologySample          # unrooted
    fingerprints: np.ndarray
    weight: np.ndarray
    ref: np.ndarray

    def __len__(self) -> int:
        return int(self.weight.shape[0])

    def bitsets(self, which: np.ndarray | None = None) -> np.ndarray:
        """Exact bitsets (len(which), W) of the splits ``which`` (default: all)."""
        smp = self.sample
        s = smp.n_taxa
        w = n_words(s)
        which = np.arange(len(self)) if which is None else np.asarray(which, dtype=np.int64)
        out = np.zeros((which.shape[0], w), dtype=np.uint64)
        if which.shape[0] == 0:
            return out
        canon = smp.keys.view(np.int32)
        scratch = np.zeros((canon.shape[1], w), dtype=np.uint64)
        topo = self.ref[which, 0]
        order = np.argsort(topo, kind="stable")
        last = -1
        for i in order:
            u = int(topo[i])
            if u != last:
                row = canon[u]
                n = int(np.count_nonzero(row != -2))
                _k.node_clades(row, n, s, w, scratch)
                last = u
            out[i] = scratch[self.ref[which[i], 1]]
        return out


def split_counts(sample: TopologySample) -> SplitCounts:
    """Distinct non-trivial splits (unrooted) and their summed weights, by fingerprint.

    Rooted samples are unrooted first. Memory is 40 bytes per distinct split plus one
    bounded batch of topologies, whatever the number of taxa (10⁴-taxon samples fit).
    """
    smp = sample.as_unrooted()
    s = smp.n_taxa
    table = RowTable(2, capacity=max(16, 4 * s))
    if s < 4:
        return SplitCounts(smp, table.keys.copy(), np.zeros(0), np.zeros((0, 2), np.int64))
    z0, z1 = _zobrist(s)
    canon = smp.keys.view(np.int32)
    per = max(1, SPLIT_BYTES // max(1, (s - 3) * 40))
    fp_scratch = np.zeros((canon.shape[1], 2), dtype=np.uint64)
    size = np.zeros(canon.shape[1], dtype=np.int64)
    weights = smp.counts.astype(np.float64)
    total = np.zeros(0)
    refs = np.zeros((0, 2), dtype=np.int64)
    for a in range(0, canon.shape[0], per):
        part = canon[a:a + per]
        r = part.shape[0] * (s - 3)
        fps = np.empty((r, 2), dtype=np.uint64)
        fw = np.empty(r)
        ref = np.empty((r, 2), dtype=np.int64)
        k = _k.canonical_split_fingerprints(part, s, weights[a:a + per], z0, z1, fp_scratch,
                                            size, fps, fw, ref)
        old = len(table)
        ids = table.add(fps[:k])
        if len(table) > old:
            new = np.flatnonzero(ids >= old)
            _, first = np.unique(ids[new], return_index=True)   # first occurrence, id order
            got = ref[new[first]]
            got[:, 0] += a
            refs = np.concatenate([refs, got])
            total = np.concatenate([total, np.zeros(len(table) - old)])
        total += np.bincount(ids, weights=fw[:k], minlength=len(table))
    return SplitCounts(smp, table.keys.copy(), total, refs)


def split_frequencies(sample: TopologySample) -> tuple[np.ndarray, np.ndarray]:
    """Distinct non-trivial splits (unrooted) and their frequencies.

    Returns ``(splits (k, W) uint64, freq (k,))``, frequency = summed weight of the
    trees containing the split / total weight. Rooted samples are unrooted first.
    (The bitsets take k x W words: at 10⁴ taxa use :func:`split_counts`, which
    identifies splits by fingerprint and builds bitsets only for chosen splits.)
    """
    counts = split_counts(sample)
    return counts.bitsets(), counts.weight / counts.sample.total


def split_to_string(row: np.ndarray, n_taxa: int) -> str:
    """MrBayes-style pattern: ``*`` for the taxa in the split, ``.`` elsewhere."""
    on = set(members(row, n_taxa))
    return "".join("*" if i in on else "." for i in range(n_taxa))
