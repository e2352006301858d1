"""Power-posterior estimators: stepping stone, (modified) path sampling, generalised SS.

All sample the power posteriors p_β ∝ p(D|θ)^β p(θ) at β_k = (k/K)^{1/α},
k = 0..K (evenly spaced quantiles of Beta(α, 1); K = 50, α = 0.3 as in Xie et al.
2011 and Fourment et al. 2020) with :func:`phylo.marginal.mcmc.run_ladder`: the
chain starts at the posterior and walks down the ladder, β = 0 is sampled exactly.
Per step: ``burnin`` discarded then ``samples_per_step`` kept samples, one every
``thin`` generations (default one sweep = dim generations; with a ``budget`` the
thinning spends it).

Diagnostics: ``ladder_betas`` (K + 1,), ``ladder_contributions`` (K,) whose sum is
log Z, ``loglik_trace`` (β = 1 step), ``ladder_ess`` and ``ladder_mean_loglik``.
Pass ``checkpoint=PATH`` to :meth:`run` to make the ladder resumable.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ...errors import EstimatorError
from ..base import Estimate, MarginalLikelihoodEstimator, check_positive, log_mean_se, logmeanexp
from ..base_problem import BaseProblem
from ..checkpoint import LadderCheckpoint
from ..mcmc import LadderResult, Reference, beta_ladder, run_ladder, sample_posterior


@dataclass
class _LadderEstimator(MarginalLikelihoodEstimator):
    resumable: ClassVar[bool] = True
    setting_roles: ClassVar[dict[str, str]] = {
        "steps": "n_steps", "samples": "samples_per_step", "burnin": "burnin",
        "thin": "thin", "alpha": "alpha"}
    warmup_settings: ClassVar[dict[str, Any]] = {"n_steps": 2, "samples_per_step": 2,
                                                 "burnin": 1}

    n_steps: int = 50
    alpha: float = 0.3
    samples_per_step: int = 1000
    burnin: int = 100
    thin: int | None = None

    def validate(self, problem: BaseProblem) -> None:
        check_positive(self.name, n_steps=self.n_steps, alpha=self.alpha,
                       samples_per_step=self.samples_per_step)
        if self.samples_per_step < 2:
            raise EstimatorError(f"{self.name}: samples_per_step must be at least 2")
        if self.burnin < 0 or (self.thin is not None and self.thin < 1):
            raise EstimatorError(f"{self.name}: burnin must be ≥ 0 and thin ≥ 1")

    def betas(self) -> np.ndarray:
        return beta_ladder(self.n_steps, self.alpha)

    def _thin(self, problem: BaseProblem, budget: int | None) -> int:
        if budget is not None:
            per_sample = (self.n_steps + 1) * (self.samples_per_step + self.burnin) + 4 * self.burnin
            return max(1, budget // per_sample)
        return self.thin if self.thin is not None else problem.dim

    def _ladder(self, problem: BaseProblem, rng: np.random.Generator, budget: int | None,
                progress: bool, checkpoint: Any = None, reference: Reference | None = None,
                stop_after: int | None = None, store_z_at: tuple[int, ...] = ()) -> LadderResult:
        ckpt = None
        if checkpoint is not None:
            ckpt = LadderCheckpoint(checkpoint, {
                "estimator": self.name, "settings": self.settings(), "budget": budget,
                "rng_state": rng.bit_generator.state, "problem": problem.describe(),
                "reference": None if reference is None else reference.to_dict()})
        return run_ladder(problem, self.betas(), samples_per_step=self.samples_per_step,
                          thin=self._thin(problem, budget), burnin=self.burnin, rng=rng,
                          reference=reference, checkpoint=ckpt, progress=progress,
                          stop_after=stop_after, store_z_at=store_z_at)


def _diagnostics(lad: LadderResult, contributions: np.ndarray) -> dict:
    return {"ladder_betas": lad.betas.tolist(), "ladder_contributions": contributions.tolist(),
            "loglik_trace": lad.loglik[-1].tolist(), "ess": lad.ess[-1],
            "ladder_ess": list(lad.ess), "ladder_mean_loglik": [float(x.mean()) for x in lad.loglik],
            "acceptance": float(np.mean([a.mean() for a in lad.acceptance[1:]])),
            "resumed_steps": lad.resumed_steps}


@dataclass
class SteppingStone(_LadderEstimator):
    """Stepping stone (Xie et al. 2011): log Z = Σ_k log mean_{θ~p_{β_k}} L(θ)^{β_{k+1}−β_k}.

    Error: Σ_k of the delta-method variances of each ratio, with each step's ESS.
    """

    name: ClassVar[str] = "stepping-stone"

    def _estimate(self, problem, *, rng, budget, progress, checkpoint=None, stop_after=None,
                  **options) -> Estimate:
        lad = self._ladder(problem, rng, budget, progress, checkpoint, stop_after=stop_after)
        db = np.diff(lad.betas)
        contrib = np.array([logmeanexp(db[k] * lad.loglik[k]) for k in range(self.n_steps)])
        var = sum(log_mean_se(db[k] * lad.loglik[k], lad.ess[k]) ** 2 for k in range(self.n_steps))
        return Estimate(float(contrib.sum()), math.sqrt(var), _diagnostics(lad, contrib))


def _trapezoid(lad: LadderResult) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    b = lad.betas
    db = np.diff(b)
    m = np.array([x.mean() for x in lad.loglik])
    v = np.array([x.var(ddof=1) for x in lad.loglik])
    contrib = db * (m[:-1] + m[1:]) / 2.0
    w = np.zeros(b.size)
    w[:-1] += db / 2.0
    w[1:] += db / 2.0
    ess = np.maximum(np.array(lad.ess), 1.0)
    se = math.sqrt(float(np.sum(w * w * v / ess)))
    return contrib, se, v, db


@dataclass
class PathSampling(_LadderEstimator):
    """Path sampling / thermodynamic integration (Gelman & Meng 1998; Lartillot &
    Philippe 2006): log Z = ∫₀¹ E_β[log L] dβ by the trapezoid rule on the ladder.
    Error: Monte Carlo error of the step means (ESS), not the discretisation error."""

    name: ClassVar[str] = "path-sampling"

    def _estimate(self, problem, *, rng, budget, progress, checkpoint=None, stop_after=None,
                  **options) -> Estimate:
        lad = self._ladder(problem, rng, budget, progress, checkpoint, stop_after=stop_after)
        contrib, se, _, _ = _trapezoid(lad)
        return Estimate(float(contrib.sum()), se, _diagnostics(lad, contrib))


@dataclass
class ModifiedPathSampling(_LadderEstimator):
    """Modified path sampling (Friel & Pettitt 2014 / Friel, Hurn & Wyse 2014):
    the trapezoid rule corrected by −Σ_k (Δβ_k²/12)(Var_{β_{k+1}}[log L] − Var_{β_k}[log L]),
    which removes most of the discretisation bias."""

    name: ClassVar[str] = "modified-path-sampling"

    def _estimate(self, problem, *, rng, budget, progress, checkpoint=None, stop_after=None,
                  **options) -> Estimate:
        lad = self._ladder(problem, rng, budget, progress, checkpoint, stop_after=stop_after)
        contrib, se, v, db = _trapezoid(lad)
        contrib = contrib - db * db / 12.0 * (v[1:] - v[:-1])
        return Estimate(float(contrib.sum()), se, _diagnostics(lad, contrib))


@dataclass
class GeneralizedSteppingStone(_LadderEstimator):
    """Generalised stepping stone (Fan et al. 2011): the ladder runs from a reference
    q fitted to a pilot posterior run (moment-matched Gamma per branch length, normal
    per other unconstrained parameter, as in Fourment et al. 2020) to the posterior:
    p_β ∝ [L(θ)p(θ)]^β q(θ)^{1−β};  log Z = Σ_k log mean_{p_{β_k}} [L p / q]^{Δβ_k}.

    The pilot has ``pilot_samples`` kept samples with the ladder's thinning.
    """

    name: ClassVar[str] = "generalized-stepping-stone"
    warmup_settings: ClassVar[dict[str, Any]] = {**_LadderEstimator.warmup_settings,
                                                 "pilot_samples": 8}
    pilot_samples: int = 1000

    def _estimate(self, problem, *, rng, budget, progress, checkpoint=None, stop_after=None,
                  **options) -> Estimate:
        thin = self._thin(problem, budget)
        pilot = sample_posterior(problem, n_samples=self.pilot_samples, thin=thin,
                                 burnin=5 * self.burnin, rng=rng, store_z=True)
        ref = Reference.fit(pilot.z, problem.n_branches)
        lad = self._ladder(problem, rng, budget, progress, checkpoint, reference=ref,
                           stop_after=stop_after)
        db = np.diff(lad.betas)
        contrib, var = np.empty(self.n_steps), 0.0
        for k in range(self.n_steps):
            logw = db[k] * (lad.loglik[k] + lad.logprior[k] - lad.logref[k])
            contrib[k] = logmeanexp(logw)
            var += log_mean_se(logw, lad.ess[k]) ** 2
        diag = _diagnostics(lad, contrib)
        diag["reference"] = ref.to_dict()
        return Estimate(float(contrib.sum()), math.sqrt(var), diag)
