"""Run several estimators, with repeats, on one or several problems: a tidy table."""
from __future__ import annotations

import zlib
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import EstimatorError
from .base import MarginalLikelihoodEstimator, MarginalLikelihoodResult
from .base_problem import BaseProblem
from .registry import get_estimator

ROW_KEYS = ("problem", "estimator", "repeat", "seed", "log_marginal_likelihood", "std_error",
            "likelihood_evaluations", "seconds")


class ComparisonTable(list):
    """A list of tidy rows (dicts with :data:`ROW_KEYS`); ``.results[i]`` is the full
    :class:`MarginalLikelihoodResult` of row ``i`` (diagnostics included)."""

    def __init__(self, rows: Sequence[dict], results: Sequence[MarginalLikelihoodResult]) -> None:
        super().__init__(rows)
        self.results = list(results)


def run_seed(seed: int, problem: str, estimator: str, repeat: int) -> int:
    """The seed of one cell: independent of which other estimators/problems run."""
    key = [int(seed), int(repeat), zlib.crc32(problem.encode()), zlib.crc32(estimator.encode())]
    return int(np.random.SeedSequence(key).generate_state(1, dtype=np.uint32)[0])


def compare(problems: Mapping[str, BaseProblem] | BaseProblem,
            estimators: Sequence[str | MarginalLikelihoodEstimator], *, repeats: int = 1,
            seed: int = 1, budget: int | None = None, progress: bool = False,
            **options: Any) -> ComparisonTable:
    """Run every estimator ``repeats`` times on every problem.

    problems: one problem or ``{name: problem}``; estimators: names or instances.
    Each (problem, estimator, repeat) gets its own seed from :func:`run_seed`, so a
    row is reproducible alone. Returns a :class:`ComparisonTable` (a list of dict rows).
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
            for est in ests:
                for r in range(repeats):
                    s = run_seed(seed, pname, est.name, r)
                    res = est.run(problem, seed=s, budget=budget, **options)
                    rows.append({"problem": pname, "estimator": est.name, "repeat": r, "seed": s,
                                 "log_marginal_likelihood": res.log_marginal_likelihood,
                                 "std_error": res.std_error,
                                 "likelihood_evaluations": res.likelihood_evaluations,
                                 "seconds": res.seconds})
                    results.append(res)
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return ComparisonTable(rows, results)
