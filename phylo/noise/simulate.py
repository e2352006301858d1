"""Simulated single-cell genotype matrices.

A cell lineage is drawn (Kingman coalescent of the sampled cells, or a
birth–death process of dividing and dying cells from which cells are sampled),
``n_mutations`` mutations are dropped on its branches with probability
proportional to branch length under the infinite sites assumption (each
mutation arises once, never lost), which gives the conflict-free true matrix A;
the observed A′ flips true 0s to 1 with probability α (false positives), true 1s
to 0 with probability β (false negatives) and hides entries with the missing
rate. This is the setting of Sadeqi Azer et al. (2020), who used a coalescent
(ms) for the lineage. The random recursive mutation tree (mutation j's parent
uniform among earlier mutations and the root, each cell attached to a uniform
node) is the benchmark generator of the PhISCS-BnB comparisons.

Matrices are int8[cells, mutations]; missing entries are :data:`MISSING` (3).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import PhyloError
from .io import MISSING

LINEAGES = ("coalescent", "birth-death", "random-tree")


def _rng(seed: int | None) -> np.random.Generator:
    """Generator from a public keyword-only int ``seed`` (validated: an int
    >= 0 or None, like every seed in the package)."""
    from .inference import check_seed  # local: inference imports this module
    return np.random.default_rng(check_seed(seed))


def _check_rate(name: str, value: float, upper: float = 1.0) -> float:
    value = float(value)
    if not (0.0 <= value < upper):
        raise PhyloError(f"{name} must be in [0, {upper}), got {value}")
    return value


@dataclass(frozen=True)
class SimulatedMatrix:
    """``true`` (A, conflict-free) and ``observed`` (A′) as int8[cells, mutations];
    ``parent``/``attachment`` give a mutation tree for A (root = n_mutations)."""

    true: np.ndarray
    observed: np.ndarray
    parent: np.ndarray
    attachment: np.ndarray
    alpha: float
    beta: float
    missing: float
    lineage: str


def tree_matrix(parent: np.ndarray, attachment: np.ndarray) -> np.ndarray:
    """The conflict-free matrix of a mutation tree: int8[cells, mutations] with
    A[c, j] = 1 iff mutation j is on the root→attachment[c] path (root = n)."""
    parent = np.asarray(parent, dtype=np.int64)
    n = parent.size
    anc = np.zeros((n + 1, n), dtype=np.int8)  # anc[v] = mutations on root→v
    done = np.zeros(n + 1, dtype=bool)
    done[n] = True
    for v in range(n):
        path = []
        x = v
        while not done[x]:
            path.append(x)
            x = parent[x]
            if len(path) > n:
                raise PhyloError("mutation tree has a cycle")
        for y in reversed(path):
            anc[y] = anc[parent[y]]
            anc[y, y] = 1
            done[y] = True
    return anc[np.asarray(attachment, dtype=np.int64)].copy()


def random_mutation_tree(n_cells: int, n_mutations: int, *, seed: int | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random recursive mutation tree: mutation j's parent uniform among
    mutations 0..j-1 and the root; each cell attached to a uniform node
    (root included). Returns ``(parent, attachment, A)`` (root = n_mutations)."""
    _check_sizes(n_cells, n_mutations)
    return _random_mutation_tree(n_cells, n_mutations, _rng(seed))


def _random_mutation_tree(n_cells: int, n_mutations: int, rng: np.random.Generator):
    parent = np.empty(n_mutations, dtype=np.int64)
    for j in range(n_mutations):
        r = int(rng.integers(j + 1))   # r == j means the root
        parent[j] = n_mutations if r == j else r
    attachment = rng.integers(n_mutations + 1, size=n_cells).astype(np.int64)
    return parent, attachment, tree_matrix(parent, attachment)


TREE_SHAPES = ("any", "chain", "branching")


def uniform_mutation_tree(n_cells: int, n_mutations: int, *, shape: str = "any",
                          seed: int | None = None
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mutation tree uniform over the (n + 1)^(n − 1) rooted labelled trees
    (SCITE's prior; a uniform Prüfer sequence over n + 1 labels, root n), or
    uniform over the n! chains (``shape='chain'``) or over the branching trees
    (``'branching'``, by rejection); each cell attached to a uniform node (root
    included). The generative prior of :func:`phylo.noise.noise_probability`
    and :func:`phylo.noise.branching_probability`. Returns ``(parent,
    attachment, A)`` (root = n_mutations)."""
    _check_sizes(n_cells, n_mutations)
    if shape not in TREE_SHAPES:
        raise PhyloError(f"unknown tree shape {shape!r}; expected one of {', '.join(TREE_SHAPES)}")
    n = int(n_mutations)
    if shape == "branching" and n < 2:
        raise PhyloError("a branching tree needs at least 2 mutations")
    rng = _rng(seed)
    if shape == "chain":
        order = rng.permutation(n)
        parent = np.empty(n, dtype=np.int64)
        parent[order[0]] = n
        parent[order[1:]] = order[:-1]
    else:
        from .._kernels.noise import _prufer_parent
        while True:
            seq = rng.integers(n + 1, size=max(n - 1, 0)).astype(np.int64)
            parent = _prufer_parent(seq, n) if n > 1 else np.array([1], dtype=np.int64)
            if shape == "any" or np.bincount(parent, minlength=n + 1).max() > 1:
                break
    attachment = rng.integers(n + 1, size=int(n_cells)).astype(np.int64)
    return parent, attachment, tree_matrix(parent, attachment)


def add_noise(A: np.ndarray, alpha: float, beta: float, missing: float = 0.0, *,
              seed: int | None = None) -> np.ndarray:
    """Observed A′ from true A: 0→1 with prob. α, 1→0 with prob. β, then each
    entry missing (:data:`MISSING`) with prob. ``missing``, independently."""
    return _add_noise(A, alpha, beta, missing, _rng(seed))


def _add_noise(A: np.ndarray, alpha: float, beta: float, missing: float,
               rng: np.random.Generator) -> np.ndarray:
    alpha = _check_rate("alpha", alpha)
    beta = _check_rate("beta", beta)
    missing = _check_rate("missing rate", missing)
    A = np.asarray(A, dtype=np.int8)
    u = rng.random(A.shape)
    flip = np.where(A == 1, u < beta, u < alpha)
    out = np.where(flip, 1 - A, A).astype(np.int8)
    if missing > 0:
        out[rng.random(A.shape) < missing] = MISSING
    return out


def _check_sizes(n_cells: int, n_mutations: int) -> None:
    if int(n_cells) < 1 or int(n_mutations) < 1:
        raise PhyloError(f"need at least one cell and one mutation, got "
                         f"{n_cells} cells and {n_mutations} mutations")


def _coalescent(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Kingman coalescent of n cells: (membership bool[branches, cells], length)."""
    members = np.zeros((2 * n - 1, n), dtype=bool)
    members[np.arange(n), np.arange(n)] = True
    birth = np.zeros(2 * n - 1)   # time (back from the present) a node appears
    end = np.zeros(2 * n - 1)     # time its parent lineage starts
    live = list(range(n))
    t = 0.0
    nxt = n
    while len(live) > 1:
        k = len(live)
        t += rng.exponential(2.0 / (k * (k - 1)))
        i, j = sorted(rng.choice(k, size=2, replace=False), reverse=True)
        a, b = live.pop(i), live.pop(j)
        end[a] = end[b] = t
        members[nxt] = members[a] | members[b]
        birth[nxt] = t
        live.append(nxt)
        nxt += 1
    return members[:-1], (end - birth)[:-1]   # the root carries no branch


def _birth_death(n: int, rng, population: int, birth_rate: float, death_rate: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Birth–death cell lineage grown from one cell until ``population`` cells
    live, n of them sampled: (membership bool[branches, sampled], length).
    Each lineage segment (a cell between its birth and division/death/now) is a
    branch; the founder's segment is the trunk (clonal mutations)."""
    while True:
        parent = [-1]
        start = [0.0]
        stop = [np.nan]
        alive = [0]
        t = 0.0
        total = birth_rate + death_rate
        while 0 < len(alive) < population:
            t += rng.exponential(1.0 / (total * len(alive)))
            k = int(rng.integers(len(alive)))
            x = alive[k]
            stop[x] = t
            alive[k] = alive[-1]
            alive.pop()
            if rng.random() < birth_rate / total:
                for _ in range(2):
                    parent.append(x)
                    start.append(t)
                    stop.append(np.nan)
                    alive.append(len(parent) - 1)
        if len(alive) >= n:
            break
    stop_arr = np.array(stop)
    stop_arr[np.isnan(stop_arr)] = t
    length = stop_arr - np.array(start)
    sampled = rng.choice(np.array(alive), size=n, replace=False)
    members = np.zeros((len(parent), n), dtype=bool)
    for i, leaf in enumerate(sampled):
        x = int(leaf)
        while x >= 0:
            members[x, i] = True
            x = parent[x]
    keep = members.any(axis=1)
    return members[keep], length[keep]


def simulate(n_cells: int, n_mutations: int, *, alpha: float, beta: float,
             missing: float = 0.0, lineage: str = "coalescent",
             population: int | None = None, birth_rate: float = 1.0,
             death_rate: float = 0.3, seed: int | None = None) -> SimulatedMatrix:
    """Simulate a true conflict-free matrix and its noisy observation.

    Parameters: sizes (cells, mutations); α (false-positive rate), β
    (false-negative rate), missing rate, all per entry; ``lineage`` one of
    'coalescent', 'birth-death' (grown to ``population`` cells, default
    2 × n_cells, with the given per-cell division and death rates) or
    'random-tree' (:func:`random_mutation_tree`); ``seed``: int (keyword).
    """
    rng = _rng(seed)
    _check_sizes(n_cells, n_mutations)
    if lineage not in LINEAGES:
        raise PhyloError(f"unknown lineage {lineage!r}; expected one of {', '.join(LINEAGES)}")
    if lineage == "random-tree":
        parent, attachment, A = _random_mutation_tree(n_cells, n_mutations, rng)
    else:
        if lineage == "coalescent":
            if n_cells < 2:
                raise PhyloError("a coalescent needs at least 2 cells")
            members, length = _coalescent(n_cells, rng)
        else:
            pop = population or 2 * n_cells
            if pop < n_cells:
                raise PhyloError(f"population {pop} is smaller than the sample ({n_cells})")
            if birth_rate <= 0 or death_rate < 0 or death_rate >= birth_rate:
                raise PhyloError("need birth_rate > death_rate >= 0")
            members, length = _birth_death(n_cells, rng, pop, birth_rate, death_rate)
        branch = rng.choice(len(length), size=n_mutations, p=length / length.sum())
        A = members[branch].T.astype(np.int8)
        from .checks import perfect_phylogeny  # local: avoids a cycle at import
        pp = perfect_phylogeny(A)
        parent, attachment = pp.parent, pp.attachment
    observed = _add_noise(A, alpha, beta, missing, rng)
    return SimulatedMatrix(A, observed, parent, attachment, float(alpha), float(beta),
                           float(missing), lineage)


def add_parallel_mutations(A: np.ndarray, n_events: int = 1, *, seed: int | None = None,
                           max_tries: int = 100) -> np.ndarray:
    """Break the infinite sites assumption: ``n_events`` times, a mutation also
    arises in a clade disjoint from its own (parallel mutation). Retries until
    the matrix is not conflict-free (the alternative of the noise-inference test).
    """
    from .checks import is_conflict_free
    rng = _rng(seed)
    A = np.asarray(A, dtype=np.int8)
    n, m = A.shape
    for _ in range(max_tries):
        B = A.copy()
        for _e in range(n_events):
            j, k = rng.choice(m, size=2, replace=False) if m > 1 else (0, 0)
            other = B[:, k] == 1
            if not other.any() or (other & (B[:, j] == 1)).any():
                other = rng.random(n) < 0.3
            B[other, j] = 1
        if not is_conflict_free(B):
            return B
    raise PhyloError("could not create a conflict in this matrix (too few cells "
                     "or mutations)")
