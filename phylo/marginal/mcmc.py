"""MCMC on the fixed-topology posterior: power posteriors, ladders, ESS.

One *generation* is one proposal and one likelihood evaluation, as in MrBayes.
Proposals (see :mod:`phylo._kernels.mcmc`): multiplier moves on single branch
lengths (uniform random walk on log t), random-walk moves on unconstrained model
parameters, and a tree-length multiplier on all branches at once, with per-move
widths adapted during burn-in only (so that the kept samples come from a fixed,
valid Markov kernel).

The sampler targets the power posterior p_β(z) ∝ p(D|z)^β p(z) (Lartillot &
Philippe 2006; Xie et al. 2011) for any β ∈ [0, 1], optionally the generalised
power posterior [p(D|z) p(z)]^β q(z)^{1−β} (Fan et al. 2011), and optionally the
constraint log p(D|z) ≥ ℓ* of nested sampling (Skilling 2006).

When the problem offers a compiled log-likelihood
(:meth:`~phylo.marginal.base_problem.BaseProblem.numba_target`), the loop runs in
Numba; a tree problem offering ``incremental_target()`` runs the Numba loop with
incremental likelihood updates (only the partials on the path from a changed branch
to the root are recomputed, as in MrBayes), and with free model parameters the
moves on them are made in the same compiled loop (each builds the proposed model's
eigensystem and rate categories in compiled code, :mod:`phylo._kernels.models`, and
recomputes every partial into spare buffers);
otherwise the same algorithm runs in Python on the problem's methods
(``backend="python"``). Every engine counts one likelihood evaluation per
generation, in one place (:meth:`Sampler._segment`).
Everything is seeded from a ``numpy.random.Generator`` passed in; nothing touches
global random state.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .._kernels import densities as _dens
from .._kernels import mcmc as _k
from ..errors import EstimatorError
from ..threads import threads as _threads
from .base_problem import BaseProblem

#: Initial width of every proposal (log-scale units); adapted during burn-in.
INITIAL_SCALE = 0.5
#: Generations per call of the compiled loop (bounds memory for the uniforms).
CHUNK_GENERATIONS = 1 << 16


@dataclass
class ChainState:
    """Where a chain is: z (dim,), its log-likelihood and log-prior, widths (dim + 1,)."""

    z: np.ndarray
    loglik: float
    logprior: float
    scales: np.ndarray

    def copy(self) -> "ChainState":
        return ChainState(self.z.copy(), float(self.loglik), float(self.logprior), self.scales.copy())

    def to_dict(self) -> dict:
        return {"z": self.z.tolist(), "loglik": self.loglik, "logprior": self.logprior,
                "scales": self.scales.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "ChainState":
        return cls(np.asarray(d["z"], dtype=np.float64), float(d["loglik"]), float(d["logprior"]),
                   np.asarray(d["scales"], dtype=np.float64))


@dataclass(frozen=True)
class Reference:
    """A product reference q(z) for the generalised stepping stone (Fan et al. 2011).

    ``kind`` (dim,) 0 = Gamma(``a``, rate ``b``) on t = e^z, 1 = Normal(``a``, sd ``b``) on z.
    """

    kind: np.ndarray
    a: np.ndarray
    b: np.ndarray

    def log_density(self, z: np.ndarray) -> np.ndarray:
        """log q(z) for z (B, dim) → (B,)."""
        z = np.atleast_2d(z)
        return np.array([_dens.log_reference(row, self.kind, self.a, self.b) for row in z])

    def sample(self, n: int, *, rng: np.random.Generator) -> np.ndarray:
        out = np.empty((n, self.kind.shape[0]))
        for i, (k, a, b) in enumerate(zip(self.kind, self.a, self.b)):
            if k == 0:
                out[:, i] = np.log(np.maximum(rng.gamma(a, 1.0 / b, size=n), np.finfo(float).tiny))
            else:
                out[:, i] = rng.normal(a, b, size=n)
        return out

    @classmethod
    def fit(cls, z: np.ndarray, n_branches: int) -> "Reference":
        """Moment-matched Gammas on branch lengths, normals on the rest (z: (n, dim))."""
        dim = z.shape[1]
        kind = np.ones(dim, dtype=np.int64)
        a = np.empty(dim)
        b = np.empty(dim)
        t = np.exp(z[:, :n_branches])
        m, v = t.mean(axis=0), np.maximum(t.var(axis=0), 1e-300)
        kind[:n_branches] = 0
        a[:n_branches] = m * m / v
        b[:n_branches] = m / v
        a[n_branches:] = z[:, n_branches:].mean(axis=0)
        b[n_branches:] = np.maximum(z[:, n_branches:].std(axis=0), 1e-6)
        return cls(kind, a, b)

    def to_dict(self) -> dict:
        return {"kind": self.kind.tolist(), "a": self.a.tolist(), "b": self.b.tolist()}


@dataclass(frozen=True)
class ChainResult:
    """Samples of one chain at one β.

    ``loglik``/``logprior`` (n_samples,), ``z`` (n_samples, dim) or None,
    ``acceptance`` (dim + 1,) per move during sampling (last = tree-length move),
    ``state`` the final state, ``evaluations`` likelihood evaluations spent.
    """

    beta: float
    loglik: np.ndarray
    logprior: np.ndarray
    z: np.ndarray | None
    acceptance: np.ndarray
    state: ChainState
    evaluations: int

    @property
    def ess(self) -> float:
        """Effective sample size of the log-likelihood trace."""
        return effective_sample_size(self.loglik)


class _TreeChain:
    """The compiled incremental tree loop (:func:`phylo._kernels.mcmc.run_chain_tree`),
    model-parameter moves included: each call hands it private copies of the model's
    kernel arrays at u = z[n_branches:] (built in compiled code,
    :meth:`phylo.marginal.Problem.kernel_model`) and the compiled model builder's
    arrays (:meth:`phylo.marginal.Problem.model_spec`). Calls have the signature of the
    compiled loops after their likelihood arguments and return (ll, lp).
    """

    def __init__(self, problem: BaseProblem, targs: tuple, prior_rate: float) -> None:
        self.problem = problem
        self.targs = targs
        self.prior_rate = float(prior_rate)
        self.n_branches = problem.n_branches
        spec = problem.model_spec() if hasattr(problem, "model_spec") else None
        if spec is None:             # no free model parameters: the arrays are never read
            self._spec = (np.zeros(5, dtype=np.int64), np.zeros(14), np.zeros(6),
                          np.zeros((4, 1)))
        else:
            basis = spec.invariant_basis if spec.invariant_basis is not None else np.zeros((4, 1))
            self._spec = (spec.free, spec.fixed, spec.prior, basis)

    def __call__(self, z, ll, lp, w_like, w_prior, w_ref, kind, a, b, ll_min, n_branches,
                 uniforms, scales, accepts, tries, adapt, thin, out_z, out_ll, out_lp):
        nb = self.n_branches
        targs = self.targs
        if z.shape[0] > nb:
            packed, inv = self.problem.kernel_model(z[nb:])
            packed, inv = packed.copy(), inv.copy()      # the loop overwrites them
            targs = targs._replace(data=targs.data._replace(model=packed, inv=inv))
        model_prop = np.empty_like(targs.data.model)
        inv_prop = np.empty_like(targs.data.inv)
        free, fixed, prior, basis = self._spec
        ll, lp = _k.run_chain_tree(
            targs, self.prior_rate, free, fixed, prior, basis, model_prop, inv_prop, z, ll,
            lp, w_like, w_prior, w_ref, kind, a, b, ll_min, nb, uniforms, scales, accepts,
            tries, adapt, thin, out_z, out_ll, out_lp)
        return ll, lp


class Sampler:
    """Runs chains on one problem (compiled loop when the problem offers one)."""

    def __init__(self, problem: BaseProblem, *, backend: str = "auto") -> None:
        if backend not in ("auto", "numba", "python"):
            raise EstimatorError(f"backend must be auto, numba or python, got {backend!r}")
        self.problem = problem
        incremental = None
        if backend != "python" and hasattr(problem, "incremental_target"):
            incremental = problem.incremental_target()
        target = problem.numba_target() if backend != "python" else None
        self._incremental = incremental is not None
        if backend == "numba" and target is None and incremental is None:
            raise EstimatorError(f"{type(problem).__name__} offers no compiled likelihood")
        if incremental is not None:
            # tree likelihood with incremental (path-to-root) updates; model-parameter
            # moves, if any, proposed between calls of the compiled loop
            self._fn = _TreeChain(problem, *incremental)
            self._args = ()
        elif target is not None:
            self._fn = _k.run_chain
            self._args = (target.loglik, target.loglik_args, target.logprior, target.logprior_args)
        else:
            def loglik(z: np.ndarray, _args: object) -> float:
                return problem._log_likelihood(*problem.split(z))

            def logprior(z: np.ndarray, _args: object) -> float:
                return problem.log_prior(z)
            self._fn = _k.run_chain.py_func
            self._args = (loglik, None, logprior, None)
        self.backend = "numba" if (target is not None or incremental is not None) else "python"

    def initial_state(self, z0: np.ndarray | None = None) -> ChainState:
        z = np.array(self.problem.initial_point() if z0 is None else z0, dtype=np.float64)
        if z.shape != (self.problem.dim,):
            raise EstimatorError(f"initial point has shape {z.shape}, expected ({self.problem.dim},)")
        ll = self.problem.log_likelihood(z)
        lp = self.problem.log_prior(z)
        return ChainState(z, ll, lp, np.full(self.problem.dim + 1, INITIAL_SCALE))

    def run(self, state: ChainState, *, beta: float, n_samples: int, thin: int, burnin: int = 0,
            rng: np.random.Generator, store_z: bool = False, reference: Reference | None = None,
            ll_min: float = -math.inf, adapt: bool = True,
            progress: Callable[[int], None] | None = None) -> ChainResult:
        """Burn in (``burnin`` × ``thin`` generations, adapting widths), then keep
        ``n_samples`` states, one every ``thin`` generations. ``state`` is updated in place.

        With ``reference`` the target is the generalised power posterior
        [L p]^β q^{1−β}; ``ll_min`` constrains log L (nested sampling).
        """
        if not 0.0 <= beta <= 1.0:
            raise EstimatorError(f"beta must be in [0, 1], got {beta}")
        if thin < 1 or n_samples < 0 or burnin < 0:
            raise EstimatorError("thin must be ≥ 1 and sample counts ≥ 0")
        d = self.problem.dim
        if reference is None:
            weights = (beta, 1.0, 0.0)
            kind, a, b = np.ones(d, dtype=np.int64), np.zeros(d), np.ones(d)
        else:
            weights = (beta, beta, 1.0 - beta)
            kind, a, b = reference.kind, reference.a, reference.b
        before = self.problem.n_likelihood_evaluations
        empty_z = np.empty((0, d))
        if burnin:
            self._segment(state, weights, kind, a, b, ll_min, burnin * thin, thin, adapt, rng,
                          np.empty(0), np.empty(0), empty_z, progress)
        out_ll = np.empty(n_samples)
        out_lp = np.empty(n_samples)
        out_z = np.empty((n_samples, d)) if store_z else empty_z
        acc = self._segment(state, weights, kind, a, b, ll_min, n_samples * thin, thin, False, rng,
                            out_ll, out_lp, out_z, progress)
        return ChainResult(beta, out_ll, out_lp, out_z if store_z else None, acc, state.copy(),
                           self.problem.n_likelihood_evaluations - before)

    def _segment(self, state: ChainState, weights: tuple[float, float, float], kind: np.ndarray,
                 a: np.ndarray, b: np.ndarray, ll_min: float, generations: int, thin: int,
                 adapt: bool, rng: np.random.Generator, out_ll: np.ndarray, out_lp: np.ndarray,
                 out_z: np.ndarray, progress: Callable[[int], None] | None) -> np.ndarray:
        d = self.problem.dim
        accepts = np.zeros(d + 1, dtype=np.int64)
        tries = np.zeros(d + 1, dtype=np.int64)
        chunk = max(thin, (CHUNK_GENERATIONS // thin) * thin)
        done = 0
        while done < generations:
            n = min(chunk, generations - done)
            uniforms = rng.random((n, 3))
            k0, k1 = done // thin, (done + n) // thin
            # the problem's thread count for the pattern-parallel kernels (restored after)
            with _threads(getattr(getattr(self.problem, "likelihood", None), "threads", None)):
                ll, lp = self._fn(*self._args, state.z, state.loglik, state.logprior,
                                  weights[0], weights[1], weights[2], kind, a, b, ll_min,
                                  self.problem.n_branches, uniforms, state.scales, accepts,
                                  tries, adapt, thin, out_z[k0:k1] if out_z.shape[0] else out_z,
                                  out_ll[k0:k1] if out_ll.shape[0] else out_ll,
                                  out_lp[k0:k1] if out_lp.shape[0] else out_lp)
            state.loglik, state.logprior = float(ll), float(lp)
            # The one place that counts chain evaluations, whatever the engine: one
            # likelihood evaluation per generation (the Python engine calls the
            # problem's uncounted ``_log_likelihood`` hook, the compiled ones count
            # nothing themselves).
            self.problem.count(n)
            done += n
            if progress is not None:
                progress(n)
        return accepts / np.maximum(tries, 1)


def sample_posterior(problem: BaseProblem, *, n_samples: int, thin: int | None = None,
                     burnin: int | None = None, beta: float = 1.0, rng: np.random.Generator,
                     store_z: bool = True, initial: np.ndarray | None = None,
                     backend: str = "auto") -> ChainResult:
    """One power-posterior chain (default β = 1, the posterior) from ``initial``.

    ``thin`` defaults to ``problem.dim`` generations (one sweep); ``burnin`` (in kept
    samples) to 10 % of ``n_samples`` plus a 50-sample warm-up.
    """
    sampler = Sampler(problem, backend=backend)
    state = sampler.initial_state(initial)
    thin = default_thin(problem) if thin is None else thin
    burnin = default_burnin(n_samples) if burnin is None else burnin
    return sampler.run(state, beta=beta, n_samples=n_samples, thin=thin, burnin=burnin,
                       rng=rng, store_z=store_z)


def default_thin(problem: BaseProblem) -> int:
    """One sweep: as many generations as coordinates."""
    return max(1, problem.dim)


def default_burnin(n_samples: int) -> int:
    return 50 + n_samples // 10


def beta_ladder(n_steps: int, alpha: float) -> np.ndarray:
    """β_k = (k/K)^{1/α}, k = 0..K: evenly spaced quantiles of Beta(α, 1), ascending (K + 1,).

    α = 0.3 in Xie et al. (2011) and Fourment et al. (2020); MrBayes uses 0.4.
    """
    if n_steps < 1:
        raise EstimatorError(f"a ladder needs at least one step, got {n_steps}")
    if not alpha > 0:
        raise EstimatorError(f"the ladder's alpha must be positive, got {alpha}")
    return (np.arange(n_steps + 1) / n_steps) ** (1.0 / alpha)


def effective_sample_size(x: np.ndarray) -> float:
    """ESS of a scalar trace by Geyer's initial monotone sequence estimator.

    ESS = n / (1 + 2 Σ_k ρ_k) with the autocorrelations ρ_k summed in pairs while
    positive and forced monotone (Geyer 1992). Returns n for a constant trace.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    if n < 4:
        return float(n)
    x = x - x.mean()
    var = float(x @ x) / n
    if var <= 0 or not math.isfinite(var):
        return float(n)
    m = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(x, m)
    acf = np.fft.irfft(f * np.conj(f), m)[:n] / (n * var)
    pair_sums = acf[: n - 1: 2][: (n - 1) // 2] + acf[1: n: 2][: (n - 1) // 2]
    total = 0.0
    prev = math.inf
    for k, p in enumerate(pair_sums):
        if p <= 0:
            break
        p = min(p, prev)
        prev = p
        total += p
    tau = -1.0 + 2.0 * total
    return float(n / max(tau, 1.0 / n))


@dataclass
class LadderResult:
    """Samples along a β ladder, ascending β (the order estimators use).

    ``betas`` (K + 1,); ``loglik[k]`` (n_k,) the log-likelihood trace at betas[k];
    ``z[k]`` stored states (only where asked); ``acceptance[k]``; ``ess[k]``.
    """

    betas: np.ndarray
    loglik: list[np.ndarray]
    logprior: list[np.ndarray]
    logref: list[np.ndarray] = field(default_factory=list)
    z: dict[int, np.ndarray] = field(default_factory=dict)
    acceptance: list[np.ndarray] = field(default_factory=list)
    ess: list[float] = field(default_factory=list)
    evaluations: int = 0
    resumed_steps: int = 0


def run_ladder(problem: BaseProblem, betas: Sequence[float], *, samples_per_step: int, thin: int,
               burnin: int, rng: np.random.Generator, initial_burnin: int | None = None,
               reference: Reference | None = None, store_z_at: Sequence[int] = (),
               checkpoint=None, progress: bool = False, backend: str = "auto",
               stop_after: int | None = None) -> LadderResult:
    """Sample every power posterior of an ascending ladder ``betas`` (K + 1,), from β = 1 down.

    Like MrBayes, the chain starts at the posterior (after ``initial_burnin`` kept-sample
    equivalents, default 5 × ``burnin``) and walks down the ladder, each step burning in
    ``burnin`` × ``thin`` generations from the previous step's final state. β = 0 is
    sampled exactly (prior, or ``reference`` for the generalised ladder). ``checkpoint``
    (a :class:`~phylo.marginal.checkpoint.LadderCheckpoint`) stores every completed step
    with the generator state, so a resumed run equals an uninterrupted one.
    ``stop_after`` (tests) raises KeyboardInterrupt after that many completed steps.
    """
    betas = np.asarray(betas, dtype=np.float64)
    if betas.ndim != 1 or betas.size < 2 or np.any(np.diff(betas) <= 0):
        raise EstimatorError("betas must be strictly increasing with at least two values")
    n_total = betas.size
    order = list(range(n_total - 1, -1, -1))          # descending β
    sampler = Sampler(problem, backend=backend)
    start_evals = problem.n_likelihood_evaluations
    lls: dict[int, np.ndarray] = {}
    lps: dict[int, np.ndarray] = {}
    lrs: dict[int, np.ndarray] = {}
    zs: dict[int, np.ndarray] = {}
    accs: dict[int, np.ndarray] = {}
    state: ChainState | None = None
    resumed = 0
    extra_evals = 0
    if checkpoint is not None:
        saved = checkpoint.load()
        if saved is not None:
            for k, rec in saved["steps"].items():
                lls[k], lps[k], lrs[k], accs[k] = rec["loglik"], rec["logprior"], rec["logref"], rec["acceptance"]
                if rec.get("z") is not None:
                    zs[k] = rec["z"]
            state = ChainState.from_dict(saved["state"]) if saved["state"] is not None else None
            rng.bit_generator.state = saved["rng_state"]
            extra_evals = int(saved["evaluations"])
            problem.count(extra_evals)
            resumed = len(saved["steps"])
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=n_total, initial=resumed, desc="power posteriors", unit="step", leave=False)
    try:
        completed = resumed
        for k in order:
            if k in lls:
                continue
            beta = float(betas[k])
            if beta == 0.0:
                draws = (reference.sample(samples_per_step, rng=rng) if reference is not None
                         else problem.sample_prior(samples_per_step, rng=rng))
                ll = problem.log_likelihood_batch(draws)
                lp = problem.log_prior_batch(draws)
                lls[k], lps[k] = ll, lp
                accs[k] = np.ones(problem.dim + 1)
                if reference is not None:
                    lrs[k] = reference.log_density(draws)
                if k in store_z_at:
                    zs[k] = draws
            else:
                first = state is None
                if first:
                    state = sampler.initial_state()
                res = sampler.run(state, beta=beta, n_samples=samples_per_step, thin=thin,
                                  burnin=(5 * burnin if initial_burnin is None else initial_burnin)
                                  if first else burnin,
                                  rng=rng, store_z=(k in store_z_at or reference is not None),
                                  reference=reference)
                lls[k], lps[k], accs[k] = res.loglik, res.logprior, res.acceptance
                if reference is not None:
                    lrs[k] = reference.log_density(res.z)
                if k in store_z_at:
                    zs[k] = res.z
            completed += 1
            if checkpoint is not None:
                checkpoint.save(steps={j: {"loglik": lls[j], "logprior": lps[j],
                                           "logref": lrs.get(j), "acceptance": accs[j],
                                           "z": zs.get(j)} for j in lls},
                                state=None if state is None else state.to_dict(),
                                rng_state=rng.bit_generator.state,
                                evaluations=problem.n_likelihood_evaluations - start_evals)
            if bar is not None:
                bar.update(1)
            if stop_after is not None and completed >= stop_after and completed < n_total:
                raise KeyboardInterrupt
    finally:
        if bar is not None:
            bar.close()
    idx = range(n_total)
    return LadderResult(
        betas=betas, loglik=[lls[k] for k in idx], logprior=[lps[k] for k in idx],
        logref=[lrs.get(k, np.empty(0)) for k in idx] if reference is not None else [],
        z=zs, acceptance=[accs[k] for k in idx],
        ess=[effective_sample_size(lls[k]) for k in idx],
        evaluations=problem.n_likelihood_evaluations - start_evals, resumed_steps=resumed)
