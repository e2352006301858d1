"""Run several estimators, with repeats, on problems already built: a tidy table.

For candidates given as model × topology (with checkpoints, executors and reports)
use :func:`phylo.marginal.workflow.compare_candidates`; both run each repeat through
:func:`phylo.marginal.workflow.run_repeat`, so they share the rows and the seed
convention (:func:`phylo.marginal.workflow.derive_seed`).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..errors import EstimatorError
from .base import MarginalLikelihoodEstimator, MarginalLikelihoodResult
from .base_problem import BaseProblem
from .registry import get_estimator
from .workflow import ROW_KEYS, problem_identity, run_repeat

__all__ = ["ComparisonTable", "ROW_KEYS", "compare"]


class ComparisonTable(list):
    """A list of tidy rows (dicts with :data:`ROW_KEYS`); ``.results[i]`` is the full
    :class:`MarginalLikelihoodResult` of row ``i`` (diagnostics included)."""

    def __init__(self, rows: Sequence[dict], results: Sequence[MarginalLikelihoodResult]) -> None:
        super().__init__(rows)
        self.results = list(results)


def compare(problems: Mapping[str, BaseProblem] | BaseProblem,
            estimators: Sequence[str | MarginalLikelihoodEstimator], *, repeats: int = 1,
            seed: int = 1, budget: int | None = None, progress: bool = False,
            **options: Any) -> ComparisonTable:
    """Run every estimator ``repeats`` times on every problem.

    problems: one problem or ``{name: problem}``; estimators: names or instances.
    Repeat ``r`` of an estimator on a problem runs with
    ``derive_seed(seed, problem_identity(problem), estimator, r)``: a row is
    reproducible alone, and equals ``phylo marginal``/``phylo compare`` on the same
    model, topology and seed. Returns a :class:`ComparisonTable` (a list of dict rows).
    """
    if isinstance(problems, BaseProblem):
        problems = {problems.name: problems}
    if not problems:
        raise EstimatorError("compare: no problems given")
    if repeats < 1:
        raise EstimatorError(f"compare: repeats must be ≥ 1, got {repeats}")
    ests = [get_estimator(e) for e in estimators]
    if not ests:
        raise EstimatorError("compare: no estimators given")
    total = len(problems) * len(ests) * repeats
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=total, desc="compare", unit="run")
    rows, results = [], []
    try:
        for pname, problem in problems.items():
            identity = problem_identity(problem)
            for est in ests:
                for r in range(repeats):
                    task, res = run_repeat(problem, est, seed=seed, repeat=r, name=pname,
                                           identity=identity, budget=budget, **options)
                    row = dict(task.row)
                    if res.std_error is None:
                        row["std_error"] = None   # this table keeps "no error" as None
                    rows.append(row)
                    results.append(res)
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return ComparisonTable(rows, results)
