"""The model-comparison workflow as a library API, behind an executor seam.

A *candidate* is a substitution model on a topology (:class:`CandidateSpec`: plain
strings, frozen and picklable, so that it travels to worker processes and Dask
workers). :func:`compare_candidates` estimates the log marginal likelihood of every
candidate ``repeats`` times with one estimator and returns tidy rows (the input of
:func:`phylo.report.build_report`); ``phylo compare`` is this function plus parsing,
progress and the report.

Work is cut into one task per (candidate, repeat): :func:`evaluate_candidate`, a pure
function of picklable inputs. Tasks run in this process, or on ``executor`` -- any
object with ``submit(fn, *args, **kwargs) -> future`` (a
:class:`concurrent.futures.Executor`, a :class:`dask.distributed.Client`). A task's
numbers depend only on its inputs, so the result is bit-identical whatever the number
of workers and whatever the order in which tasks finish.

Seeds (the one convention of the package)
-----------------------------------------
Repeat ``r`` of a candidate runs ``estimator.run(problem, seed=s)`` with::

    s = derive_seed(master_seed, candidate_identity, estimator.name, r)

where :func:`derive_seed` feeds ``numpy.random.SeedSequence(entropy=master_seed,
spawn_key=(32-bit words of sha256(identity + estimator), r))`` and keeps 53 bits of
its output. The identity (:func:`candidate_identity`) is the sha256 of the model's
structure (canonical name without parameter values) and the set of splits of the unrooted topology -- not the candidate's
name, file, leaf order or rooting. So ``phylo marginal ALN TREE --model M --seed S``
and the candidate "M on TREE" of ``phylo compare ... --seed S`` give the same number,
a candidate's numbers do not depend on which other candidates run, and a resumed run
reproduces an uninterrupted one.

Checkpoints
-----------
With ``store`` (a :class:`~phylo.marginal.checkpoint.CheckpointStore`), every finished
(candidate, repeat) is saved as soon as it arrives, and resumable estimators
(``estimator.resumable``) also save every ladder rung there. A resumed run
(``store.open(resume=True)``) skips finished tasks and continues interrupted ladders.
Rung files are written by the worker that runs the ladder, so they only help a
resumed run when the store's folder is shared with the workers.
"""
from __future__ import annotations

import hashlib
import json
import math
import queue
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..errors import EstimatorError, PhyloError
from .base import MarginalLikelihoodEstimator, MarginalLikelihoodResult
from .base_problem import BaseProblem

#: Keys of a tidy row, in order. ``seed`` is the master seed the user gave,
#: ``run_seed`` the seed this repeat's estimator ran with (:func:`derive_seed`).
ROW_KEYS = ("problem", "estimator", "repeat", "seed", "run_seed", "log_marginal_likelihood",
            "std_error", "likelihood_evaluations", "seconds", "compile_seconds")

#: Diagnostics kept per task (the keys with a fixed meaning, see phylo.marginal.base;
#: the tree-space estimator adds which topologies carried the estimate and how).
DIAGNOSTIC_KEYS = ("ladder_betas", "ladder_contributions", "loglik_trace", "ess", "acceptance",
                   "per_topology", "method", "method_reason", "n_topologies", "posterior_mass",
                   "posterior_mass_se", "posterior_mass_error_method", "pareto_k", "warnings",
                   "priors", "importance_ess", "inner_pareto_k_max", "inner_unreliable_topologies",
                   "inner_unreliable_share")

#: How the report and ``--help`` word the convention (kept next to the code it describes).
SEED_CONVENTION = ("repeat r of a candidate runs with derive_seed(seed, identity, estimator, r): "
                   "numpy SeedSequence(entropy=seed, spawn_key=(sha256 words of the candidate's "
                   "model and unrooted splits + estimator name, r)); the same candidate and "
                   "seed give the same number in phylo marginal and phylo compare")

TOPOLOGY_KINDS = ("newick", "tree-sample")

#: Digits of branch lengths in a candidate's Newick: 17 significant digits round-trip
#: every float64 exactly, so a candidate rebuilt in a worker starts its samplers where
#: the original tree would.
NEWICK_DIGITS = 17


# -- candidates --------------------------------------------------------------------------
@dataclass(frozen=True)
class CandidateSpec:
    """One candidate: a substitution model on a topology (strings only, picklable).

    model: IQ-TREE syntax ("JC69", "HKY+G4", ...); free parameters are integrated
        over their priors unless the problem options fix them.
    topology: a Newick string (branch lengths, when present, start the samplers), or
        with ``topology_kind="tree-sample"`` a reference to a tree sample (a path and
        whatever its problem factory needs); see ``problem_factory`` of
        :func:`compare_candidates`.
    name: the label in tables and reports ("HKY+G4 on nni1"); unique within a run.
    source: where the topology came from (a file, "neighbour joining", ...).
    """

    model: str
    topology: str
    name: str
    source: str = ""
    topology_kind: str = "newick"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise PhyloError("a candidate needs a non-empty name")
        if self.topology_kind not in TOPOLOGY_KINDS:
            raise PhyloError(f"candidate {self.name!r}: topology_kind must be one of "
                             f"{', '.join(TOPOLOGY_KINDS)}, got {self.topology_kind!r}")
        if not isinstance(self.topology, str) or not self.topology.strip():
            raise PhyloError(f"candidate {self.name!r}: empty topology")

    @classmethod
    def from_tree(cls, model: str, tree, *, name: str, source: str = "") -> "CandidateSpec":
        """A candidate from a :class:`~phylo.trees.Tree` (its lengths kept exactly)."""
        return cls(model=model, topology=tree.to_newick(precision=NEWICK_DIGITS), name=name,
                   source=source or (tree.source or ""))

    def tree(self, taxa: Sequence[str] | None = None):
        """The topology as an unrooted :class:`~phylo.trees.Tree` (leaves in ``taxa`` order)."""
        if self.topology_kind != "newick":
            raise PhyloError(f"candidate {self.name!r} is a tree sample, not one topology")
        from ..io.newick import parse_newick
        tree = parse_newick(self.topology, taxa=taxa, source=self.source or self.name)
        return tree.unrooted() if tree.rooted else tree

    def identity(self) -> str:
        """The stable identity that keys this candidate's seeds (:func:`candidate_identity`)."""
        if self.topology_kind == "tree-sample":
            return _sha256_text(f"{_canonical_model(self.model)}\ntree-sample:{self.topology}")
        return candidate_identity(self.model, self.tree())

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "model": self.model, "topology": self.topology,
                "topology_kind": self.topology_kind, "source": self.source}


def _canonical_model(model: Any) -> str:
    """The model's structure: its canonical string without parameter values
    ("HKY+F+G4" for "HKY+G4", whether or not the frequencies were filled from data)."""
    import re
    from ..models import Model
    if isinstance(model, str):
        model = Model.from_string(model)
    return re.sub(r"\{[^}]*\}", "", model.to_string())


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def topology_key(tree) -> str:
    """A canonical text of an unrooted topology: its taxa and non-trivial splits.

    Each split is written as the sorted names of the side without the first taxon
    (in sorted order); independent of leaf numbering, Newick order and rooting.
    """
    if tree.rooted:
        tree = tree.unrooted()
    s = tree.n_leaves
    taxa = list(tree.taxa)
    anchor = taxa.index(min(taxa))
    below: list[frozenset[int]] = []
    splits: set[tuple[str, ...]] = set()
    for v in range(tree.n_nodes):          # post-order: children before parents
        if v < s:
            below.append(frozenset((v,)))
            continue
        side = frozenset().union(*(below[c] for c in tree.children[v, :tree.n_children[v]]))
        below.append(side)
        if anchor in side:
            side = frozenset(range(s)) - side
        if 1 < len(side) < s - 1:
            splits.add(tuple(sorted(taxa[i] for i in side)))
    return ";".join([",".join(sorted(taxa))] + sorted(",".join(sp) for sp in splits))


def candidate_identity(model: Any, tree) -> str:
    """sha256 (hex) of the canonical model string and :func:`topology_key` of ``tree``."""
    return _sha256_text(f"{_canonical_model(model)}\n{topology_key(tree)}")


def problem_identity(problem: BaseProblem) -> str:
    """The seed identity of a problem: :func:`candidate_identity` of its model and tree
    for a fixed-topology :class:`~phylo.marginal.Problem`; otherwise the sha256 of its
    :meth:`~phylo.marginal.BaseProblem.describe` record."""
    tree = getattr(problem, "tree", None)
    model = getattr(problem, "model", None)
    if tree is not None and model is not None:
        return candidate_identity(model, tree)
    return _sha256_text(json.dumps(problem.describe(), sort_keys=True, default=str))


def derive_seed(master_seed: int, identity: str, estimator: str, repeat: int) -> int:
    """The seed of repeat ``repeat`` of ``estimator`` on the candidate ``identity``.

    ``numpy.random.SeedSequence(entropy=master_seed, spawn_key=(w0..w3, repeat))``
    with ``w`` the first four little-endian 32-bit words of
    sha256(identity + "\\n" + estimator); 53 bits of its state (exact in any JSON reader).
    """
    if not isinstance(master_seed, (int, np.integer)) or isinstance(master_seed, bool) \
            or master_seed < 0:
        raise EstimatorError(f"the seed must be a non-negative integer, got {master_seed!r}")
    if repeat < 0:
        raise EstimatorError(f"repeat must be non-negative, got {repeat}")
    digest = hashlib.sha256(f"{identity}\n{estimator}".encode()).digest()
    words = [int(w) for w in np.frombuffer(digest[:16], dtype="<u4")]
    seq = np.random.SeedSequence(entropy=int(master_seed), spawn_key=(*words, int(repeat)))
    hi, lo = (int(x) for x in seq.generate_state(2, dtype=np.uint32))
    return ((hi << 32) | lo) >> 11


def alignment_digest(alignment) -> str:
    """sha256 (hex) of an alignment's content: taxa, site patterns, weights and the
    site-to-pattern map (not its file: the same data from FASTA or NEXUS agree)."""
    h = hashlib.sha256("\n".join(alignment.taxa).encode() + b"\0")
    for array, dtype in ((alignment.patterns, "u1"), (alignment.weights, "<f8"),
                         (alignment.site_pattern, "<i8")):
        h.update(np.ascontiguousarray(array, dtype=dtype).tobytes())
    return h.hexdigest()


def comparison_fingerprint(alignment, candidates: Sequence[CandidateSpec],
                           estimator: MarginalLikelihoodEstimator, *, seed: int,
                           repeats: int, problem_options: Mapping[str, Any] | None = None
                           ) -> dict[str, Any]:
    """Everything that determines a comparison's numbers, for a
    :class:`~phylo.marginal.checkpoint.CheckpointStore`: a resumed run must match it."""
    from .._version import __version__
    return {"phylo_version": __version__, "alignment_sha256": alignment_digest(alignment),
            "candidates": [c.to_dict() for c in candidates], "estimator": estimator.name,
            "settings": estimator.settings(), "problem_options": dict(problem_options or {}),
            "repeats": int(repeats), "seed": int(seed)}


# -- one task --------------------------------------------------------------------------------
@dataclass(frozen=True)
class TaskResult:
    """The outcome of one (candidate, repeat): its tidy row and its diagnostics."""

    name: str
    repeat: int
    row: dict[str, Any]
    diagnostics: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "repeat": self.repeat, "row": self.row,
                "diagnostics": self.diagnostics}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TaskResult":
        row = dict(data["row"])
        if row.get("std_error") is None:
            row["std_error"] = math.nan
        return cls(name=data["name"], repeat=int(data["repeat"]), row=row,
                   diagnostics=dict(data.get("diagnostics", {})))


def result_row(name: str, result: MarginalLikelihoodResult, *, seed: int, repeat: int) -> dict:
    """The tidy row (:data:`ROW_KEYS`) of one estimator run; NaN for an unknown SE."""
    se = result.std_error
    return {"problem": name, "estimator": result.estimator, "repeat": int(repeat),
            "seed": int(seed), "run_seed": int(result.seed),
            "log_marginal_likelihood": float(result.log_marginal_likelihood),
            "std_error": math.nan if se is None else float(se),
            "likelihood_evaluations": int(result.likelihood_evaluations),
            "seconds": float(result.seconds),
            "compile_seconds": float(result.compile_seconds)}


def _plain(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else value


def run_repeat(problem: BaseProblem, estimator: MarginalLikelihoodEstimator, *, seed: int,
               repeat: int, name: str | None = None, identity: str | None = None,
               budget: int | None = None, progress: bool = False,
               **options: Any) -> tuple[TaskResult, MarginalLikelihoodResult]:
    """Run repeat ``repeat`` of ``estimator`` on ``problem`` under the package's seed
    convention; the task result (row, diagnostics) and the full estimator result."""
    name = name or problem.name
    identity = identity or problem_identity(problem)
    run_seed = derive_seed(seed, identity, estimator.name, repeat)
    result = estimator.run(problem, seed=run_seed, budget=budget, progress=progress, **options)
    d = result.diagnostics or {}
    diagnostics = {k: _plain(d[k]) for k in DIAGNOSTIC_KEYS if d.get(k) is not None}
    return (TaskResult(name, int(repeat), result_row(name, result, seed=seed, repeat=repeat),
                       diagnostics), result)


def build_problem(alignment, candidate: CandidateSpec, **problem_options: Any) -> BaseProblem:
    """The default problem factory: the fixed-topology posterior
    :class:`~phylo.marginal.Problem` of ``candidate`` (``problem_options`` go to it:
    ``branch_prior_rate``, ``estimate_model``)."""
    if candidate.topology_kind != "newick":
        raise EstimatorError(f"candidate {candidate.name!r} is a tree sample: give "
                             "compare_candidates a problem_factory that integrates over it")
    from .problem import Problem
    return Problem(alignment, candidate.tree(alignment.taxa), candidate.model,
                   name=candidate.name, **problem_options)


def evaluate_candidate(alignment, candidate: CandidateSpec,
                       estimator: MarginalLikelihoodEstimator, *, seed: int,
                       repeats: int | Sequence[int] = 1,
                       problem_options: Mapping[str, Any] | None = None,
                       problem_factory: Callable[..., BaseProblem] | None = None,
                       rung_checkpoints: Mapping[int, str] | None = None,
                       threads: int | None = None) -> list[TaskResult]:
    """Estimate one candidate's log Z for the given repeats (pure; picklable inputs).

    repeats: a count ``R`` (repeats ``0..R-1``) or the repeat indices to run.
    problem_factory: ``factory(alignment, candidate, **problem_options) -> problem``
        (default :func:`build_problem`); a module-level function, so that it pickles.
    rung_checkpoints: ``{repeat: path}`` of ladder checkpoints, for resumable
        estimators; a finished repeat's file is removed.
    threads: Numba threads for this call (restored afterwards); None leaves them.
    """
    if threads is not None:
        from ..threads import max_threads, threads as _threads
        with _threads(max(1, min(int(threads), max_threads()))):   # phylo.threads: restored
            return evaluate_candidate(alignment, candidate, estimator, seed=seed,
                                      repeats=repeats, problem_options=problem_options,
                                      problem_factory=problem_factory,
                                      rung_checkpoints=rung_checkpoints)
    factory = problem_factory or build_problem
    problem = factory(alignment, candidate, **dict(problem_options or {}))
    identity = candidate.identity()
    indices = range(repeats) if isinstance(repeats, (int, np.integer)) else list(repeats)
    out = []
    for r in indices:
        options: dict[str, Any] = {}
        path = (rung_checkpoints or {}).get(r)
        if path is not None and estimator.resumable:
            options["checkpoint"] = path
        task, _ = run_repeat(problem, estimator, seed=seed, repeat=r, name=candidate.name,
                             identity=identity, **options)
        out.append(task)
        if path is not None:
            from pathlib import Path
            Path(path).unlink(missing_ok=True)   # the finished repeat needs no rung file
    return out


# -- the whole comparison ----------------------------------------------------------------
@dataclass
class Comparison:
    """What :func:`compare_candidates` returns.

    rows: tidy rows (:data:`ROW_KEYS`), candidates in the given order, repeats ascending.
    diagnostics: ``{candidate name: diagnostics of repeat 0}`` (the report's figures).
    computed / reused: (candidate, repeat) pairs run in this call / taken from the store.
    warmup_seconds: time spent filling Numba's cache before the executor's tasks.
    """

    rows: list[dict[str, Any]]
    diagnostics: dict[str, dict[str, Any]]
    computed: list[tuple[str, int]] = field(default_factory=list)
    reused: list[tuple[str, int]] = field(default_factory=list)
    warmup_seconds: float = 0.0


@dataclass(frozen=True)
class Progress:
    """One finished task, as told to ``progress``: its result and the running counts."""

    task: TaskResult
    done: int
    total: int
    reused: bool = False


def _validate(candidates: Sequence[CandidateSpec], repeats: int, seed: int) -> None:
    if not candidates:
        raise EstimatorError("compare_candidates: no candidates given")
    for c in candidates:
        if not isinstance(c, CandidateSpec):
            raise EstimatorError(f"compare_candidates: expected CandidateSpec, got "
                                 f"{type(c).__name__}")
    names = [c.name for c in candidates]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise EstimatorError(f"compare_candidates: candidate names must be unique; repeated: "
                             f"{', '.join(dup)}")
    if not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise EstimatorError(f"compare_candidates: repeats must be ≥ 1, got {repeats!r}")
    derive_seed(seed, "", "", 0)   # validates the seed


def compare_candidates(alignment, candidates: Sequence[CandidateSpec],
                       estimator: str | MarginalLikelihoodEstimator, *, seed: int,
                       repeats: int = 1, store=None, executor=None,
                       progress: Callable[[Progress], None] | None = None,
                       problem_options: Mapping[str, Any] | None = None,
                       problem_factory: Callable[..., BaseProblem] | None = None,
                       threads_per_task: int | None = None,
                       max_retries: int = 2, timeout: float | None = None,
                       warm: bool = True) -> Comparison:
    """Estimate log Z of every candidate ``repeats`` times; tidy rows in candidate order.

    alignment: the :class:`~phylo.io.alignment.Alignment` every candidate explains.
    candidates: :class:`CandidateSpec` with unique names.
    estimator: a registered name or an instance (its settings travel with it).
    seed: the master seed (see the module docstring for the convention).
    store: an opened :class:`~phylo.marginal.checkpoint.CheckpointStore`; finished
        tasks found there are reused, new ones are saved as they finish.
    executor: None (run here, in order) or anything with ``submit`` returning futures
        with ``result()`` and ``add_done_callback`` (``concurrent.futures`` executors,
        ``dask.distributed.Client``); see :mod:`phylo.marginal.executors`.
    progress: called in this process after each finished task with a :class:`Progress`.
    problem_options / problem_factory: how a candidate becomes a problem
        (:func:`build_problem` by default).
    threads_per_task: Numba threads inside each task (default: 1 on an executor, the
        caller's setting when serial).
    max_retries: resubmissions of a task whose worker died (the executor broke or lost
        it); a task that raises an error of its own is never retried.
    warm: with an executor, first run the estimator's tiny :meth:`warmup` version here
        (:func:`~phylo.marginal.executors.warm_numba_cache`), so that workers load
        compiled kernels from Numba's cache instead of compiling them all at once.
    timeout: seconds to wait for the executor's tasks in all (None: no limit); past it
        pending tasks are cancelled and :class:`TimeoutError` is raised (what finished
        is in ``store``).

    A KeyboardInterrupt propagates after pending tasks are cancelled; whatever
    finished is in ``store`` (and was told to ``progress``).
    """
    from .registry import get_estimator
    estimator = get_estimator(estimator)
    _validate(candidates, repeats, seed)
    tasks = [(c, r) for c in candidates for r in range(repeats)]
    finished: dict[tuple[str, int], TaskResult] = {}
    reused: list[tuple[str, int]] = []
    total = len(tasks)
    if store is not None:
        saved = store.finished()
        for c, r in tasks:                      # in row order, so the counts run up
            task = saved.get((c.name, r))
            if task is not None:
                finished[(c.name, r)] = task
                reused.append((c.name, r))
                if progress is not None:
                    progress(Progress(task, len(finished), total, reused=True))
    todo = [(c, r) for c, r in tasks if (c.name, r) not in finished]

    def accept(task: TaskResult) -> None:
        finished[(task.name, task.repeat)] = task
        if store is not None:
            store.save_task(task)
        if progress is not None:
            progress(Progress(task, len(finished), total))

    def arguments(c: CandidateSpec, r: int) -> tuple[tuple, dict]:
        rungs = None
        if store is not None and estimator.resumable:
            rungs = {r: str(store.rung_path(c.name, r))}
        return ((alignment, c, estimator),
                {"seed": seed, "repeats": (r,), "problem_options": problem_options,
                 "problem_factory": problem_factory, "rung_checkpoints": rungs,
                 "threads": threads})

    # Executors: one Numba thread per task unless told otherwise (N workers on N cores).
    threads = threads_per_task if threads_per_task is not None or executor is None else 1

    computed = [(c.name, r) for c, r in todo]
    warmup_seconds = 0.0
    if executor is None:
        for c, r in todo:
            args, kwargs = arguments(c, r)
            for task in evaluate_candidate(*args, **kwargs):
                accept(task)
    else:
        if warm and todo:
            from .executors import warm_numba_cache
            warmup_seconds = warm_numba_cache(alignment, [c for c, _ in todo], estimator,
                                              problem_options=problem_options,
                                              problem_factory=problem_factory)
        _run_on_executor(executor, todo, arguments, accept, max_retries, timeout)
    rows, diagnostics = [], {}
    for c in candidates:
        for r in range(repeats):
            task = finished[(c.name, r)]
            rows.append(task.row)
            if r == 0:
                diagnostics[c.name] = task.diagnostics
    return Comparison(rows, diagnostics, computed=computed, reused=reused,
                      warmup_seconds=warmup_seconds)


def _run_on_executor(executor, todo, arguments, accept, max_retries: int,
                     timeout: float | None) -> None:
    """Submit every task, accept results as they finish (any order), retry lost ones."""
    import time
    deadline = None if timeout is None else time.monotonic() + timeout
    from .executors import is_lost_worker_error, recover, submit_task
    done_queue: "queue.Queue[tuple[Any, tuple]]" = queue.Queue()
    pending: dict[Any, tuple] = {}
    attempts: dict[tuple[str, int], int] = {}

    def submit(item: tuple) -> None:
        args, kwargs = arguments(*item)
        future = submit_task(executor, evaluate_candidate, *args, **kwargs)
        pending[future] = item
        future.add_done_callback(lambda f, it=item: done_queue.put((f, it)))

    try:
        for item in todo:
            submit(item)
        while pending:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                future, item = done_queue.get(timeout=wait)
            except queue.Empty:
                raise TimeoutError(f"compare_candidates: {len(pending)} task(s) unfinished "
                                   f"after {timeout} s") from None
            if pending.pop(future, None) is None:
                continue
            try:
                results = future.result()
            except BaseException as exc:  # noqa: BLE001 - classified just below
                if not is_lost_worker_error(exc):
                    raise
                key = (item[0].name, item[1])
                attempts[key] = attempts.get(key, 0) + 1
                if attempts[key] > max_retries:
                    raise EstimatorError(f"candidate {item[0].name!r} repeat {item[1]}: its "
                                         f"worker died {attempts[key]} times ({exc!r})") from None
                recover(executor)          # e.g. replace a broken process pool
                submit(item)               # same inputs, same seed: the same numbers
                continue
            for task in results:
                accept(task)
    except BaseException:
        for f in pending:
            f.cancel()
        raise
