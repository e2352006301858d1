"""Reading tree samples: Newick and NEXUS (MrBayes ``.t``/``.trprobs``, BEAST ``.trees``).

Two interfaces:

* :func:`read_trees` streams :class:`~phylo.trees.Tree` objects (branch lengths,
  weights, rooting) one at a time; 10⁶ trees never sit in memory.
* :func:`read_topologies` is the bulk path for split/SBN work: a Numba kernel turns
  each Newick string directly into a post-order parent array and a canonical topology
  key (the canonical parent array, O(S)), identical topologies are counted in a hash
  table, and
  only the distinct topologies are kept (:class:`~phylo.trees.splits.TopologySample`).

Both find the tree statements with a Numba scanner over blocks of the file
(:mod:`phylo.io._treefile`, 32 MB at a time), which hands NEXUS header lines and
anything unusual (quoted names, comments across lines, …) to the line parser; a
statement's weight is read as :func:`phylo.io.newick.parse_newick` reads it.

Formats: plain Newick (one or more trees, each ended by ``;``, across any lines);
NEXUS with a ``trees`` block, optional ``translate`` table (MrBayes writes numbers,
BEAST numbers or names) and ``taxa`` block; ``[&U]``/``[&R]`` rooting comments,
``[&W w]`` weights (MrBayes ``.trprobs``: ``Tree.weight``), BEAST ``[&lnP=…]`` and
per-node ``[&rate=…]`` annotations and any other ``[...]`` comment; gzip input
(detected by its magic bytes, whatever the file name).

Burn-in follows MrBayes: a float ``0 <= b < 1`` drops the first ``int(b * n)`` of
the ``n`` trees in the file (generation 0 counts as a sample); an int ``>= 1`` drops
that many trees. Thinning keeps every ``thin``-th tree after burn-in.
"""
from __future__ import annotations

import os
from typing import Iterator, Sequence

import numpy as np

from ..errors import FormatError, PhyloError, TaxonMismatchError, TreeError
from ..trees.splits import RowTable, TopologySample, canonical_keys
from ..trees.tree import Tree
from ._treefile import (TreeFileInfo, _Batch, _iter_file_slow, _Record, _scan_batches,
                        _selection)
from .newick import leading_flags, parse_newick, resolve_name

__all__ = ["read_trees", "read_topologies", "read_topology_runs", "count_trees", "TreeFileInfo",
           "tree_file_info"]

CHUNK = 8192         # tree statements per kernel call on the bulk path


def tree_file_info(path: str | os.PathLike) -> TreeFileInfo:
    """Header information of a tree file (NEXUS or not, translate table, taxa)."""
    for item in _iter_file_slow(os.fspath(path), info_only=True):
        return item
    raise FormatError("empty file", path=path)  # pragma: no cover


def count_trees(path: str | os.PathLike) -> int:
    """Number of trees in a file (one cheap pass, no parsing)."""
    return sum(len(b) for b in _scan_batches(os.fspath(path), max_batch=1 << 16))


def _burnin_count(burnin, n: int | None, path: str) -> int:
    if isinstance(burnin, (bool, np.bool_)):
        raise PhyloError(f"burn-in must be a fraction in [0, 1) or a count, got {burnin!r}")
    if isinstance(burnin, (int, np.integer)):
        if burnin < 0:
            raise PhyloError(f"burn-in must be >= 0, got {burnin}", path=path)
        k = int(burnin)
    elif isinstance(burnin, (float, np.floating)):
        b = float(burnin)
        if not (0.0 <= b < 1.0):
            raise PhyloError(f"burn-in as a fraction must be in [0, 1), got {b} (give an "
                             "int for a number of trees)", path=path)
        if b == 0.0:
            return 0
        assert n is not None
        k = int(b * n)
    else:
        raise PhyloError(f"burn-in must be a fraction in [0, 1) or a count, got {burnin!r}")
    if n is not None and k >= n and k > 0:
        raise PhyloError(f"burn-in of {k} trees leaves nothing of the {n} trees in the file",
                         path=path)
    return k


def _needs_count(burnin) -> bool:
    return isinstance(burnin, (float, np.floating)) and float(burnin) > 0.0


def _check_thin(thin) -> int:
    if not isinstance(thin, (int, np.integer)) or isinstance(thin, bool) or thin < 1:
        raise PhyloError(f"thin must be an integer >= 1, got {thin!r}")
    return int(thin)


def read_trees(path: str | os.PathLike, *, burnin: float | int = 0, thin: int = 1,
               taxa: Sequence[str] | None = None, rooted: bool | None = None) -> Iterator[Tree]:
    """Stream the trees of a Newick or NEXUS file as :class:`Tree` objects.

    Parameters
    ----------
    path: Newick, NEXUS (MrBayes ``.t``/``.trprobs``, BEAST ``.trees``), gzip or not.
    burnin: fraction ``0 <= b < 1`` of the trees in the file (``int(b*n)`` dropped,
        MrBayes' convention; needs one cheap counting pass) or a number of trees.
    thin: keep every ``thin``-th tree after burn-in.
    taxa: leaf order; default: the translate table's order, else the NEXUS taxa
        block, else the sorted leaf names of the first tree. Every tree must have
        exactly these taxa (:class:`TaxonMismatchError` naming file and line).
    rooted: force rooted/unrooted; default from ``[&R]``/``[&U]`` or the root degree.

    Returns an iterator; file, burn-in and thinning errors are raised at once,
    per-tree errors (:class:`TreeError`, :class:`TaxonMismatchError`) when reached.
    ``[&W w]`` sets ``Tree.weight``; ``Tree.name`` is the NEXUS tree name.
    """
    path = os.fspath(path)
    thin = _check_thin(thin)
    info = tree_file_info(path)
    n = count_trees(path) if _needs_count(burnin) else None
    skip = _burnin_count(burnin, n, path)
    return _read_trees_gen(path, info, skip, thin, taxa, rooted, n)


def _read_trees_gen(path, info, skip, thin, taxa, rooted, n_expected):
    taxa_t = tuple(taxa) if taxa is not None else info.taxa
    batcher = None
    total = 0
    for batch in _scan_batches(path, max_batch=TREE_BATCH):
        sel = _selection(total, len(batch), skip, thin)
        total += len(batch)
        if sel.shape[0] and taxa_t is None:
            # the first tree fixes the taxa (sorted leaf names): regex parser
            rec = batch.record(int(sel[0]))
            tree = _parse_one(rec.body.decode("utf-8", "replace"), path, rec, info, None, rooted)
            taxa_t = tree.taxa
            yield tree
            sel = sel[1:]
        if sel.shape[0]:
            if batcher is None:
                batcher = _TreeBatcher(path, info, taxa_t, rooted)
            yield from batcher.trees(batch, sel)
    if total == 0:      # the rule of read_topologies too
        raise FormatError("no trees in the file", path=path)
    _check_skip(path, skip, total)


TREE_BATCH = 1000   # tree statements parsed per kernel call by read_trees
BATCH_BYTES = 64 << 20   # bound on the per-call arrays: fewer trees per call for big trees
_MAX_DEGREE = 16    # wider nodes (rare large polytomies) go through the regex parser


def _per_call(limit: int, bytes_per_tree: int) -> int:
    """Trees per kernel call: ``limit``, fewer when the arrays would pass BATCH_BYTES."""
    return max(1, min(limit, BATCH_BYTES // max(1, bytes_per_tree)))


def _slices(sel: np.ndarray, step: int):
    for a in range(0, sel.shape[0], step):
        yield sel[a:a + step]


class _TreeBatcher:
    """Batches of tree statements → Tree objects through the Numba Newick kernel.

    Statements the kernel does not accept (quoted labels, unusual numbers, unary
    nodes, any error) are re-parsed one by one with
    :func:`phylo.io.newick.parse_newick`, which gives the same tree or the precise
    error (file, line, what), in file order.
    """

    def __init__(self, path, info, taxa, rooted):
        from .._kernels import newick as _kn
        self._kn = _kn
        self.path = path
        self.info = info
        self.taxa = tuple(taxa)
        self.rooted = rooted
        s = len(self.taxa)
        self.S = s
        self.maxn = max(2 * s - 1, 1)
        self.K = max(1, min(s, _MAX_DEGREE))
        self.labels = _label_table(self.taxa, info.translate, path)
        self.per_call = _per_call(TREE_BATCH, self.maxn * (4 * self.K + 16))

    def trees(self, batch: _Batch, sel: np.ndarray):
        """Trees of the statements ``sel`` (indices) of a scanned batch, in order."""
        for part in _slices(sel, self.per_call):
            yield from self._trees(batch, part)

    def _trees(self, batch: _Batch, sel: np.ndarray):
        T = sel.shape[0]
        maxn, K = self.maxn, self.K
        par = np.empty((T, maxn), dtype=np.int32)
        bl = np.empty((T, maxn), dtype=np.float64)
        nn = np.empty(T, dtype=np.int32)
        first = np.empty(T, dtype=np.int64)
        status = np.empty(T, dtype=np.int32)
        self._kn.parse_newick_batch(batch.arr, batch.bs[sel], batch.be[sel], *self.labels,
                                    self.S, self._kn._POW10, par, bl, nn, first, status,
                                    True)
        ch = np.empty((T, maxn, K), dtype=np.int32)
        nch = np.empty((T, maxn), dtype=np.int32)
        maxdeg = np.empty(T, dtype=np.int32)
        self._kn.children_batch(par, nn, ch, nch, maxdeg)
        nn_l = nn.tolist()
        md_l = maxdeg.tolist()
        st_l = status.tolist()
        sel_l = sel.tolist()
        line_l = batch.line[sel].tolist()
        taxa, path, forced, S = self.taxa, self.path, self.rooted, self.S
        make = Tree._from_layout
        for t in range(T):
            flags = None
            if st_l[t] == 0 and md_l[t] <= K:
                flags = _statement_flags(batch, sel_l[t])
            if flags is None:
                rec = batch.record(sel_l[t])
                yield _parse_one(rec.body.decode("utf-8", "replace"), path, rec, self.info,
                                 taxa, forced)
                continue
            n = nn_l[t]
            k = md_l[t] or 1
            n_children = nch[t, :n].copy()
            root_flag, weight = flags
            if forced is not None:
                is_rooted = forced
            elif root_flag is not None:
                is_rooted = root_flag
            else:
                is_rooted = bool(n_children[n - 1] == 2)
            tree = make(taxa, ch[t, :n, :k].copy(), n_children, par[t, :n].copy(),
                        bl[t, :n - 1].copy(), is_rooted, weight, batch.name(sel_l[t]),
                        f"{path}:{line_l[t]}")
            if not is_rooted and n_children[n - 1] == 2 and S > 2:
                tree = tree.unrooted()
            yield tree


def _statement_flags(batch: _Batch, t: int):
    """(rooting flag, weight) of statement ``t``'s leading comments as parse_newick reads
    them (the scanner's exact values, else :func:`leading_flags`); None when they are
    malformed (the regex parser then raises the error with file and line)."""
    try:
        return batch.flags(t)
    except TreeError:
        return None


def _check_skip(path, skip, n):
    if skip > 0 and skip >= n:
        raise PhyloError(f"burn-in of {skip} trees leaves nothing of the {n} trees in the file",
                         path=path)


def _parse_one(text, path, rec, info, taxa_t, rooted) -> Tree:
    try:
        tree = parse_newick(text, taxa=taxa_t, translate=info.translate, rooted=rooted,
                            source=path, line=rec.line, name=rec.name)
    except TaxonMismatchError as exc:
        if info.translate is not None and "not expected" in exc.detail:
            raise TaxonMismatchError(
                exc.detail + " (a token missing from the translate table?)",
                path=path, line=rec.line) from None
        raise TaxonMismatchError(exc.detail, path=path, line=rec.line) from None
    except TreeError as exc:
        raise TreeError(exc.detail, path=path, line=rec.line) from None
    return tree


# ---------------------------------------------------------------------------
# bulk path
# ---------------------------------------------------------------------------

def _label_table(taxa: Sequence[str], translate: dict[str, str] | None, path: str):
    """The label table of the Numba parser: bytes of a label → taxon index.

    The one rule of both readers (as :func:`phylo.io.newick.parse_newick` applies
    it): a label is first looked up in the NEXUS translate table, then matched to a
    taxon exactly or with blanks and underscores exchanged
    (:func:`~phylo.io.newick.resolve_name`). A translate entry that names no taxon is
    an error at once. Returned as hash-sorted arrays (see
    :func:`phylo._kernels.newick._lookup_label`).
    """
    from .._kernels.newick import fnv1a
    position = {t: i for i, t in enumerate(taxa)}
    labels: dict[bytes, int] = {name.encode(): k for name, k in position.items()}
    for name, k in position.items():
        alt = name.replace(" ", "_")    # an unquoted label writes a blank as '_'
        if alt != name and resolve_name(alt, position) == name:
            labels.setdefault(alt.encode(), k)
    if translate:
        for token, name in translate.items():
            resolved = resolve_name(name, position)
            if resolved not in position:
                raise TaxonMismatchError(
                    f"the translate table names taxon {name!r}, which is not among the "
                    f"{len(position)} taxa", path=path)
            labels[token.encode()] = position[resolved]
    items = list(labels.items())
    hashes = np.array([fnv1a(np.frombuffer(b, dtype=np.uint8), 0, len(b)) if b else 0
                       for b, _ in items], dtype=np.uint64)
    order = np.argsort(hashes, kind="stable")
    lab_hash = hashes[order]
    lab_idx = np.array([items[i][1] for i in order], dtype=np.int64)
    blobs = [items[i][0] for i in order]
    lab_off = np.zeros(len(blobs) + 1, dtype=np.int64)
    lab_off[1:] = np.cumsum([len(b) for b in blobs])
    lab_bytes = np.frombuffer(b"".join(blobs) or b"\0", dtype=np.uint8).copy()
    return lab_hash, lab_idx, lab_bytes, lab_off


def read_topologies(paths: str | os.PathLike | Sequence[str | os.PathLike], *,
                    burnin: float | int = 0, thin: int = 1,
                    taxa: Sequence[str] | None = None, rooted: bool | None = None,
                    weighted: bool = True) -> TopologySample:
    """Read tree files into distinct topologies with counts (fast bulk path).

    Same file formats, burn-in (per file) and thinning as :func:`read_trees`; several
    files are pooled. Branch lengths and annotations are skipped by a Numba kernel
    that parses each Newick string straight into a parent array; topologies are
    identified by their canonical parent arrays and counted in a hash table.

    weighted: use ``[&W w]`` weights (``.trprobs``) as counts; else every tree counts 1.
    rooted: default from the first tree (``[&R]``/``[&U]``, else root degree).
    Returns a :class:`~phylo.trees.splits.TopologySample`.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise PhyloError("no tree files given")
    thin = _check_thin(thin)
    state = _BulkState(taxa, rooted)
    for p in paths:
        state.read_file(p, burnin, thin, weighted)
    return state.finish()


def read_topology_runs(paths: str | os.PathLike | Sequence[str | os.PathLike], *,
                       burnin: float | int = 0, taxa: Sequence[str] | None = None,
                       rooted: bool | None = None, weighted: bool = True
                       ) -> tuple[TopologySample, list[np.ndarray], list[np.ndarray]]:
    """:func:`read_topologies` (pooled over ``paths``, no thinning) plus, for each file,
    its post-burn-in sequence of topology indices into the pooled sample and the
    weight of each of those trees, in file order (for batch means and between-run
    spreads of topology frequencies).

    Returns ``(sample, sequences, weights)``; ``sequences[i]`` is an int64 array of
    length (trees of file i after burn-in), ``weights[i]`` the matching float64 array
    (1 per tree, or the ``[&W w]`` weights of a ``.trprobs`` summary).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise PhyloError("no tree files given")
    state = _BulkState(taxa, rooted)
    state.sequences = []
    for p in paths:
        state.read_file(p, burnin, 1, weighted)
    sample = state.finish()
    remap = np.cumsum(state.used > 0) - 1
    return (sample, [remap[ids] for ids, _ in state.sequences],
            [w for _, w in state.sequences])


class _BulkState:
    sequences: list | None = None   # per-file (ids, weights) when read_topology_runs asks

    def __init__(self, taxa, rooted):
        self.taxa = tuple(taxa) if taxa is not None else None
        self.rooted = rooted
        self.table: RowTable | None = None
        self.parents: list[np.ndarray] = []
        self.n_nodes: list[np.ndarray] = []
        self.counts = np.zeros(0)
        self.used = np.zeros(0, dtype=np.int64)
        self.n_trees = 0
        self.sources: list[str] = []

    def _setup(self, path, info, first: _Record):
        if self.taxa is None:
            if info.taxa is not None:
                self.taxa = info.taxa
            else:
                t = _parse_one(first.body.decode("utf-8", "replace"), path, first, info, None, None)
                self.taxa = t.taxa
        if self.rooted is None:
            try:
                flag, _ = leading_flags(first.body)
            except TreeError:
                flag = None      # parse_one below names the file and line
            if flag is None:
                t = _parse_one(first.body.decode("utf-8", "replace"), path, first, info,
                               self.taxa, None)
                flag = t.rooted
            self.rooted = flag
        s = len(self.taxa)
        self.S = s
        self.table = RowTable(s, capacity=max(16, min(4096, BATCH_BYTES // (8 * s))))
        self.per_call = _per_call(CHUNK, (2 * s - 1) * 12 + 2 * s * 8)

    def read_file(self, path, burnin, thin, weighted):
        info = tree_file_info(path)
        # a fractional burn-in needs the number of trees: instead of a counting pass,
        # every tree is parsed (topology ids are cheap) and burn-in/thinning applied
        # to the id sequence at the end of the file
        deferred = _needs_count(burnin)
        skip = 0 if deferred else _burnin_count(burnin, None, path)
        step = 1 if deferred else thin
        labels_ready = False
        ids_parts: list[np.ndarray] = []
        w_parts: list[np.ndarray] = []
        self.sources.append(path)
        total = 0
        for batch in _scan_batches(path, max_batch=CHUNK):
            sel = _selection(total, len(batch), skip, step)
            total += len(batch)
            if sel.shape[0] == 0:
                continue
            if self.table is None:
                self._setup(path, info, batch.record(int(sel[0])))
            if not labels_ready:
                labels_ready = True
                self._labels = _label_table(self.taxa, info.translate, path)
                self._info = info
            ids, w = self._process(path, batch, sel, weighted)
            ids_parts.append(ids)
            w_parts.append(w)
        if total == 0:
            raise FormatError("no trees in the file", path=path)
        ids = np.concatenate(ids_parts) if ids_parts else np.zeros(0, dtype=np.int64)
        w = np.concatenate(w_parts) if w_parts else np.zeros(0)
        if deferred:
            k = _burnin_count(burnin, total, path)
            ids = ids[k::thin]
            w = w[k::thin]
        else:
            _check_skip(path, skip, total)
        u = len(self.table)
        if u > self.counts.shape[0]:
            grown = np.zeros(u)
            grown[:self.counts.shape[0]] = self.counts
            self.counts = grown
            grown = np.zeros(u, dtype=np.int64)
            grown[:self.used.shape[0]] = self.used
            self.used = grown
        self.counts += np.bincount(ids, weights=w, minlength=u)
        self.used += np.bincount(ids, minlength=u)
        self.n_trees += int(ids.shape[0])
        if self.sequences is not None:
            self.sequences.append((ids.astype(np.int64), np.asarray(w, dtype=np.float64)))

    def _process(self, path, batch: _Batch, sel: np.ndarray, weighted: bool):
        """Topology ids and weights of the statements ``sel`` of a scanned batch."""
        ids, w = [], []
        for part in _slices(sel, self.per_call):
            i, x = self._process_part(path, batch, part, weighted)
            ids.append(i)
            w.append(x)
        return np.concatenate(ids), np.concatenate(w)

    def _process_part(self, path, batch: _Batch, sel: np.ndarray, weighted: bool):
        from .._kernels import newick as _kn
        s = self.S
        T = sel.shape[0]
        parents = np.empty((T, 2 * s - 1), dtype=np.int32)
        lengths = np.empty((1, 1), dtype=np.float64)   # unused: topologies only
        n_nodes = np.empty(T, dtype=np.int32)
        first = np.empty(T, dtype=np.int64)
        status = np.empty(T, dtype=np.int32)
        _kn.parse_newick_batch(batch.arr, batch.bs[sel], batch.be[sel], *self._labels, s,
                               _kn._POW10, parents, lengths, n_nodes, first, status, False)
        w = batch.w[sel] if weighted else np.ones(T)
        # the regex parser handles what the kernel leaves (quoted labels, unary nodes,
        # weights the scanner could not read exactly) and gives the precise message
        for t in np.flatnonzero((status != 0) | (batch.lead[sel] != 0)):
            rec = batch.record(int(sel[t]))
            tree = _parse_one(rec.body.decode("utf-8", "replace"), path, rec, self._info,
                              self.taxa, self.rooted)
            parents[t] = -2
            parents[t, :tree.n_nodes] = tree.parent
            n_nodes[t] = tree.n_nodes
            if weighted:
                w[t] = tree.weight
        keys = canonical_keys(parents, n_nodes, s, rooted=bool(self.rooted))
        old_u = len(self.table)
        ids = self.table.add(keys)
        if len(self.table) > old_u:
            new = np.flatnonzero(ids >= old_u)
            _, first = np.unique(ids[new], return_index=True)   # first occurrence, id order
            self.parents.append(parents[new[first]])
            self.n_nodes.append(n_nodes[new[first]])
        return ids, w

    def finish(self) -> TopologySample:
        if self.table is None:
            raise FormatError("no trees left after burn-in and thinning",
                              path=self.sources[-1] if self.sources else None)
        s = self.S
        keys = self.table.keys.copy()
        parents = np.concatenate(self.parents) if self.parents else np.zeros((0, 2 * s - 1), np.int32)
        n_nodes = np.concatenate(self.n_nodes) if self.n_nodes else np.zeros(0, np.int32)
        keep = self.used > 0     # topologies seen only in the burn-in are dropped
        if self.n_trees == 0:
            raise FormatError("no trees left after burn-in and thinning",
                              path=self.sources[-1] if self.sources else None)
        return TopologySample(self.taxa, bool(self.rooted), keys[keep], parents[keep],
                              n_nodes[keep], self.counts[keep].copy(), n_trees=self.n_trees,
                              sources=tuple(self.sources))
