"""The shared estimator interface (template method, as emcee's samplers).

An estimator is a small dataclass holding its settings. :meth:`run` validates the
problem and budget, seeds a ``numpy.random.Generator``, times the call and counts
likelihood evaluations, and calls one hook, :meth:`_estimate`, which returns an
:class:`Estimate`. The result is a frozen :class:`MarginalLikelihoodResult`.

Timing: the first run in a process compiles (or loads from the on-disk cache) the
Numba kernels it needs, which can take tens of seconds and says nothing about the
estimator. :meth:`run` measures the time spent holding Numba's compiler lock
(:func:`numba_compile_timer`, Numba's own ``numba:compiler_lock`` event) and reports
it as ``compile_seconds``; ``seconds`` is the wall time without it.

Diagnostics keys with a fixed meaning (the report command reads them):

``ladder_betas``          list[float], ascending β of a power-posterior ladder;
``ladder_contributions``  list[float], per-step contributions to log Z (sum = log Z);
``loglik_trace``          list[float], the log-likelihood trace of the main chain
                          (posterior samples, or the β = 1 step of a ladder);
``ess``                   effective sample size of that trace;
``acceptance``            mean acceptance rate of the MCMC moves;
``pareto_k``              PSIS Pareto k̂ of importance weights (:mod:`phylo.marginal.psis`;
                          above 0.7 the estimate is unreliable);
``importance_ess``        Kish effective sample size of those weights;
``warnings``              list[str], sentences a user must see (printed by the CLI).
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator

import numpy as np

from ..errors import EstimatorError
from .base_problem import BaseProblem


@dataclass(frozen=True)
class MarginalLikelihoodResult:
    """What an estimator returns.

    log_marginal_likelihood: log Z, natural log (a float; never NaN).
    std_error: the estimator's own standard error of log Z, or None where the method
        gives none (Laplace-type approximations, optima).
    likelihood_evaluations: likelihood (and gradient) evaluations used.
    seconds: wall time of the run, without Numba compilation.
    compile_seconds: wall time the run spent compiling Numba kernels or loading them
        from the on-disk cache (0 when everything was compiled already).
    estimator: registry name; settings: the estimator's settings; seed: the seed used.
    diagnostics: method-specific values (see module docstring for the fixed keys).
    per_topology: tree-space estimators (:mod:`phylo.marginal.tree_space`): one
        :class:`~phylo.marginal.tree_space.TopologyEstimate` per topology that carried
        the estimate; empty for fixed-topology estimators.
    """

    log_marginal_likelihood: float
    std_error: float | None
    likelihood_evaluations: int
    seconds: float
    estimator: str
    settings: dict[str, Any]
    seed: int | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict, repr=False)
    compile_seconds: float = 0.0
    per_topology: tuple = field(default=(), repr=False)

    def to_dict(self, *, diagnostics: bool = False) -> dict[str, Any]:
        out = {"estimator": self.estimator,
               "log_marginal_likelihood": self.log_marginal_likelihood,
               "std_error": self.std_error,
               "likelihood_evaluations": self.likelihood_evaluations,
               "seconds": self.seconds, "compile_seconds": self.compile_seconds,
               "seed": self.seed, "settings": self.settings}
        if diagnostics:
            out["diagnostics"] = self.diagnostics
        if self.per_topology:
            out["per_topology"] = [row.to_dict() for row in self.per_topology]
        return out


@dataclass
class Estimate:
    """What ``_estimate`` returns: log Z, its standard error (or None), diagnostics."""

    log_z: float
    std_error: float | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)


@dataclass
class MarginalLikelihoodEstimator:
    """Base class; subclasses are dataclasses of settings with a ``name`` and ``_estimate``.

    ``budget`` (likelihood evaluations) is optional: sampling estimators scale their
    sample sizes to spend about that many; optimisers use it as an upper bound.
    """

    name: ClassVar[str] = "abstract"
    #: Whether the method is a consistent estimator of log Z (as opposed to an
    #: approximation such as Laplace, or a bound/optimum such as the ELBO).
    consistent: ClassVar[bool] = True
    #: Whether ``run(..., checkpoint=PATH)`` saves its progress after every ladder rung
    #: and resumes from that file (the workflow's checkpoint store relies on it).
    resumable: ClassVar[bool] = False
    #: Which setting each generic option sets: role → field name. Roles: ``steps``
    #: (ladder rungs), ``samples`` (kept samples per rung, or in all), ``burnin``,
    #: ``thin``, ``alpha`` (ladder spacing). A role absent here does not apply.
    setting_roles: ClassVar[dict[str, str]] = {}
    #: Settings of a tiny run that calls the same kernels as a full one (:meth:`warmup`).
    warmup_settings: ClassVar[dict[str, Any]] = {}

    def settings(self) -> dict[str, Any]:
        """Every setting of this estimator, by field name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def with_settings(self, **changes: Any) -> "MarginalLikelihoodEstimator":
        """A copy with ``changes`` (an :class:`EstimatorError` names a wrong setting)."""
        valid = [f.name for f in dataclasses.fields(self)]
        wrong = sorted(set(changes) - set(valid))
        if wrong:
            raise EstimatorError(f"{self.name}: unknown setting(s) {', '.join(map(repr, wrong))}; "
                                 f"valid: {', '.join(valid) or 'none'}")
        return dataclasses.replace(self, **changes)

    def warmup(self) -> "MarginalLikelihoodEstimator":
        """This estimator with tiny sample sizes (:attr:`warmup_settings`): a run that
        compiles every Numba kernel a full run calls, in a fraction of a second."""
        return dataclasses.replace(self, **self.warmup_settings)

    def run(self, problem: BaseProblem, *, seed: int | None = None, budget: int | None = None,
            rng: np.random.Generator | None = None, progress: bool = False,
            **options: Any) -> MarginalLikelihoodResult:
        """Estimate log Z of ``problem``.

        Give ``seed`` (int) or ``rng``; the same seed gives the same result. ``budget``:
        likelihood evaluations to aim for (None: the settings' defaults). ``progress``
        shows a tqdm bar on long runs. ``options`` go to the hook (e.g. ``checkpoint``).
        """
        if not isinstance(problem, BaseProblem):
            raise EstimatorError(f"{self.name}: expected a marginal-likelihood problem, "
                                 f"got {type(problem).__name__}")
        if budget is not None and (not isinstance(budget, (int, np.integer)) or budget < 1):
            raise EstimatorError(f"{self.name}: budget must be a positive number of likelihood "
                                 f"evaluations, got {budget!r}")
        if rng is None:
            if seed is None:
                raise EstimatorError(f"{self.name}: give a seed (int) or rng")
            if not isinstance(seed, (int, np.integer)) or seed < 0:
                raise EstimatorError(f"{self.name}: seed must be a non-negative integer, got {seed!r}")
            rng = np.random.default_rng(int(seed))
        self.validate(problem)
        before = problem.n_likelihood_evaluations
        start = time.perf_counter()
        with numba_compile_timer() as compiling:
            est = self._estimate(problem, rng=rng, budget=None if budget is None else int(budget),
                                 progress=progress, **options)
        seconds = time.perf_counter() - start
        compile_seconds = min(compiling.seconds, seconds)
        log_z = float(est.log_z)
        if math.isnan(log_z):
            raise EstimatorError(f"{self.name}: the estimate is NaN (diagnostics: "
                                 f"{ {k: v for k, v in est.diagnostics.items() if not isinstance(v, (list, np.ndarray))} })")
        se = None if est.std_error is None else float(est.std_error)
        return MarginalLikelihoodResult(
            log_marginal_likelihood=log_z, std_error=se,
            likelihood_evaluations=problem.n_likelihood_evaluations - before,
            seconds=seconds - compile_seconds, estimator=self.name, settings=self.settings(),
            seed=None if seed is None else int(seed), diagnostics=est.diagnostics,
            compile_seconds=compile_seconds)

    def validate(self, problem: BaseProblem) -> None:
        """Check settings against the problem (raise :class:`EstimatorError`)."""

    def _estimate(self, problem: BaseProblem, *, rng: np.random.Generator, budget: int | None,
                  progress: bool, **options: Any) -> Estimate:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass
class CompileTime:
    """Seconds spent in Numba's compiler (filled in when the ``with`` block ends)."""

    seconds: float = 0.0


@contextlib.contextmanager
def numba_compile_timer() -> Iterator[CompileTime]:
    """Measure the wall time spent holding Numba's compiler lock inside the block:
    type inference, compilation and loading from the on-disk cache of every
    dispatcher called for the first time with new argument types (nested compiles
    are counted once). Numba's event listeners are process-wide, so compilations
    that other threads run meanwhile count too.
    """
    from numba.core import event
    out = CompileTime()

    def record(duration: float) -> None:
        out.seconds = float(duration)

    with event.install_timer("numba:compiler_lock", record):
        yield out


def check_device_setting(name: str, device: str) -> None:
    """Raise EstimatorError unless ``device`` is "cpu" or "cuda" (estimators whose
    draws are evaluated in batches take ``device``: "cuda" sends each batch to the GPU
    in one launch, :mod:`phylo.likelihood.cuda`)."""
    if device not in ("cpu", "cuda"):
        raise EstimatorError(f"{name}: device must be 'cpu' or 'cuda', got {device!r}")


def check_positive(name: str, **values: float) -> None:
    """Raise EstimatorError unless every value is positive."""
    for key, v in values.items():
        if not (v > 0):
            raise EstimatorError(f"{name}: {key} must be positive, got {v!r}")


def logmeanexp(x: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """log(mean(exp(x))) computed stably (natural log)."""
    x = np.asarray(x, dtype=np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    out = np.log(np.mean(np.exp(x - m), axis=axis, keepdims=True)) + m
    return float(out.reshape(())) if axis is None else np.squeeze(out, axis=axis)


def log_mean_se(logw: np.ndarray, ess: float | None = None) -> float:
    """Delta-method standard error of log mean(exp(logw)): sd(w) / (√n · mean(w)).

    ``ess`` replaces n for autocorrelated draws.
    """
    logw = np.asarray(logw, dtype=np.float64)
    w = np.exp(logw - np.max(logw))
    n = logw.shape[0] if ess is None else max(ess, 1.0)
    m = w.mean()
    if m <= 0 or logw.shape[0] < 2:
        return math.inf
    return float(w.std(ddof=1) / (math.sqrt(n) * m))
