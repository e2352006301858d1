"""Laplace-type approximations: Laplace, Gamma Laplus, Beta′ Laplus, Gamma Laplus IS.

Fourment et al. (2020) "Laplus": at the joint MAP m of the branch lengths (natural
parametrisation, t ≥ 0), each branch gets a density q_i from a family whose mode is
m_i and whose log-density curvature at m_i equals f″_ii(m) = ∂²/∂t_i² log p(D, t);
then log Z ≈ f(m) − Σ_i log q_i(m_i).

* Gamma: rate b = −f″(m)·m, shape a = b·m + 1 (mode (a−1)/b = m, curvature −b/m).
* Beta′(α, β): β + 1 = −f″ m (1 + m), α = m(β + 1) + 1.
* Branches at the bound (m_i = 0, or a non-concave fit): the density there is a
  decreasing exponential, so q_i = Exponential(rate −∂f/∂t_i(m)) (shape 1); if the
  slope is not negative the prior rate is used. This is our fallback; the paper
  states none for this case.

Free model parameters (unconstrained u) get a normal with the matching curvature.
Laplace proper works on z = log t with the full Hessian (Kass & Raftery 1995).
Gamma Laplus IS uses the Gamma Laplus product as an importance density with 10⁴
draws (Fourment et al. 2020, "GLIS"), with one change at the bound: where branches
have their MAP at 0 and a concave log density there (∂f/∂t < 0, ∂²f/∂t² < 0 at 0),
the proposal is the equal mixture of the Gamma Laplus product and the same product
with those branches' exponentials replaced by the normal of that slope and curvature
truncated to t ≥ 0, q ∝ exp(f′ t + ½ f″ t²) (a defensive mixture, Hesterberg 1995;
see :class:`GammaLaplusIS` for the measurements behind it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy import special

from ...errors import EstimatorError
from ..base import Estimate, MarginalLikelihoodEstimator, check_device_setting, check_positive, log_mean_se, logmeanexp
from ..base_problem import BaseProblem
from ..psis import KHAT_UNRELIABLE, importance_ess, pareto_khat
from .optimum import maximize_natural, maximize_unconstrained

#: Branches whose MAP length is below this (substitutions per site) count as "at zero".
ZERO_BRANCH = 1e-6
#: Relative finite-difference step for second derivatives from analytic gradients.
HESSIAN_STEP = 1e-4
#: A branch at the bound keeps its exponential when its truncated normal would start
#: this many standard deviations above the normal's centre (−f′ / √(−f″)): that far
#: out the truncated normal is the exponential of rate −f′ to within ~1/α², and its
#: inverse survival function needs no extreme arguments.
BOUNDARY_NORMAL_MAX_ALPHA = 20.0


def _second_derivatives(problem: BaseProblem, t: np.ndarray, u: np.ndarray
                        ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """(f(m), ∂f/∂t (nb,), diag ∂²f/∂t² (nb,), diag ∂²f/∂u² (nm,)) by central
    differences of the analytic gradient (one-sided forward at t = 0)."""
    f0, gt0, gu0 = problem.log_joint_natural_gradient(t, u)
    nb = t.shape[0]
    d2t = np.empty(nb)
    for i in range(nb):
        h = HESSIAN_STEP * max(t[i], 1e-3)
        tp = t.copy()
        tp[i] += h
        gp = problem.log_joint_natural_gradient(tp, u)[1][i]
        if t[i] > h:
            tm = t.copy()
            tm[i] -= h
            gm = problem.log_joint_natural_gradient(tm, u)[1][i]
            d2t[i] = (gp - gm) / (2 * h)
        else:
            d2t[i] = (gp - gt0[i]) / h
    d2u = np.empty(u.shape[0])
    for j in range(u.shape[0]):
        h = HESSIAN_STEP * max(1.0, abs(u[j]))
        up, um = u.copy(), u.copy()
        up[j] += h
        um[j] -= h
        d2u[j] = (problem.log_joint_natural_gradient(t, up)[2][j]
                  - problem.log_joint_natural_gradient(t, um)[2][j]) / (2 * h)
    return f0, gt0, d2t, d2u


@dataclass(frozen=True)
class ProductApproximation:
    """Independent per-coordinate densities: per branch ``family`` 'gamma' (shape a,
    rate b), 'betaprime' (α = a, β = b), 'exponential' (rate b) or 'truncnormal'
    (a normal of location a and scale b truncated to t ≥ 0); per model parameter a
    normal (mean mu, sd sd)."""

    family: tuple[str, ...]
    a: np.ndarray
    b: np.ndarray
    mu: np.ndarray
    sd: np.ndarray

    def log_density(self, t: np.ndarray, u: np.ndarray) -> np.ndarray:
        """log q(t, u) for t (B, nb), u (B, nm) → (B,)."""
        t = np.atleast_2d(t)
        out = np.zeros(t.shape[0])
        for i, fam in enumerate(self.family):
            x, a, b = t[:, i], self.a[i], self.b[i]
            with np.errstate(divide="ignore", invalid="ignore"):
                if fam == "gamma":
                    out += a * math.log(b) - special.gammaln(a) + special.xlogy(a - 1, x) - b * x
                elif fam == "betaprime":
                    out += (special.xlogy(a - 1, x) - (a + b) * np.log1p(x) - special.betaln(a, b))
                elif fam == "truncnormal":
                    r = (x - a) / b
                    out += np.where(x >= 0, -0.5 * r * r - math.log(b) - 0.5 * math.log(2 * math.pi)
                                    - special.log_ndtr(a / b), -np.inf)
                else:
                    out += math.log(b) - b * x
        if self.mu.size:
            r = (np.atleast_2d(u) - self.mu) / self.sd
            out += (-0.5 * r * r - np.log(self.sd) - 0.5 * math.log(2 * math.pi)).sum(axis=1)
        return out

    def sample(self, n: int, *, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        t = np.empty((n, len(self.family)))
        for i, fam in enumerate(self.family):
            if fam == "gamma":
                t[:, i] = rng.gamma(self.a[i], 1.0 / self.b[i], size=n)
            elif fam == "betaprime":
                x = rng.beta(self.a[i], self.b[i], size=n)
                t[:, i] = x / (1.0 - x)
            elif fam == "truncnormal":
                # inverse survival function on the log scale: exact far in the tail
                alpha = -self.a[i] / self.b[i]          # the bound 0 in standard units
                log_u = np.log(rng.random(size=n))
                zs = -special.ndtri_exp(log_u + special.log_ndtr(-alpha))
                t[:, i] = np.maximum(self.a[i] + self.b[i] * zs, 0.0)
            else:
                t[:, i] = rng.exponential(1.0 / self.b[i], size=n)
        u = self.mu + self.sd * rng.standard_normal((n, self.mu.size))
        return t, u


def with_boundary_normals(q: ProductApproximation, gradient: np.ndarray, curvature: np.ndarray
                          ) -> tuple[ProductApproximation, int]:
    """``q`` with each 'exponential' branch (MAP at the bound) whose log joint has a
    negative slope f′ and a negative curvature f″ at the MAP replaced by the normal
    N(f′ / (−f″), 1 / (−f″)) truncated to t ≥ 0, i.e. q ∝ exp(f′ t + ½ f″ t²): the
    second-order expansion of the log posterior at the bound, where the exponential
    keeps only its first-order term. Returns (q, number of branches replaced)."""
    fams, a, b = list(q.family), q.a.copy(), q.b.copy()
    replaced = 0
    for i, fam in enumerate(fams):
        if not (fam == "exponential" and gradient[i] < 0 and curvature[i] < 0):
            continue
        if -gradient[i] / math.sqrt(-curvature[i]) < BOUNDARY_NORMAL_MAX_ALPHA:
            fams[i] = "truncnormal"
            b[i] = 1.0 / math.sqrt(-curvature[i])
            a[i] = gradient[i] / (-curvature[i])
            replaced += 1
    return ProductApproximation(tuple(fams), a, b, q.mu, q.sd), replaced


@dataclass(frozen=True)
class MixtureApproximation:
    """An equal-weight mixture of product densities, q = (1/K) Σ_k q_k: a defensive
    mixture (Hesterberg 1995). Its importance weights are at most K times those of
    the best component at every point, p/q ≤ K·p/q_k, so its tail is no heavier than
    the lightest-tailed component's, at a cost of at most a factor K in ESS."""

    components: tuple[ProductApproximation, ...]

    @property
    def mu(self) -> np.ndarray:
        return self.components[0].mu

    def log_density(self, t: np.ndarray, u: np.ndarray) -> np.ndarray:
        parts = np.stack([c.log_density(t, u) for c in self.components])
        return special.logsumexp(parts, axis=0) - math.log(len(self.components))

    def sample(self, n: int, *, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        which = rng.integers(0, len(self.components), size=n)
        t, u = self.components[0].sample(n, rng=rng)
        for k, c in enumerate(self.components[1:], start=1):
            tk, uk = c.sample(n, rng=rng)
            sel = which == k
            t[sel], u[sel] = tk[sel], uk[sel]
        return t, u


def fit_laplus(problem: BaseProblem, family: str, *, max_iterations: int = 2000
               ) -> tuple[ProductApproximation, float, dict]:
    """Fit the Laplus product of ``family`` ('gamma' or 'betaprime') at the joint MAP.

    Returns (q, f(m), diagnostics)."""
    opt = maximize_natural(problem, include_prior=True, max_iterations=max_iterations)
    m, u = opt.t, opt.u
    f0, g, d2t, d2u = _second_derivatives(problem, m, u)
    fams, a, b = [], np.empty(m.size), np.empty(m.size)
    prior_rate = problem.branch_prior.rate
    n_fallback = 0
    for i in range(m.size):
        fam = family
        if m[i] > ZERO_BRANCH and d2t[i] < 0:
            if family == "gamma":
                b[i] = -d2t[i] * m[i]
                a[i] = b[i] * m[i] + 1.0
            else:
                beta = -d2t[i] * m[i] * (1.0 + m[i]) - 1.0
                if beta > 0:
                    b[i] = beta
                    a[i] = m[i] * (beta + 1.0) + 1.0
                else:
                    fam = "gamma"
                    b[i] = -d2t[i] * m[i]
                    a[i] = b[i] * m[i] + 1.0
        else:
            fam = "exponential"
            n_fallback += 1
            a[i] = 1.0
            b[i] = -g[i] if g[i] < 0 else prior_rate
        fams.append(fam)
    sd = 1.0 / np.sqrt(np.maximum(-d2u, 1e-12))
    q = ProductApproximation(tuple(fams), a, b, u.copy(), sd)
    diag = {"map_branch_lengths": m.tolist(), "log_joint_at_map": f0,
            "gradient_at_map": g.tolist(), "curvature_at_map": d2t.tolist(),
            "branches_at_zero": int(n_fallback), "families": list(fams),
            "optimizer_iterations": opt.iterations, "optimizer_converged": opt.converged}
    return q, f0, diag


@dataclass
class GammaLaplus(MarginalLikelihoodEstimator):
    """Gamma Laplus (Fourment et al. 2020): log Z ≈ f(m) − Σ_i log Gamma(m_i; a_i, b_i)."""

    name: ClassVar[str] = "gamma-laplus"
    consistent: ClassVar[bool] = False
    family: ClassVar[str] = "gamma"
    max_iterations: int = 2000

    def _estimate(self, problem, *, rng, budget, progress, **options) -> Estimate:
        q, f0, diag = fit_laplus(problem, self.family, max_iterations=self.max_iterations)
        m = np.asarray(diag["map_branch_lengths"])
        logq = float(q.log_density(m[None, :], q.mu[None, :])[0])
        return Estimate(f0 - logq, None, diag)


@dataclass
class BetaPrimeLaplus(GammaLaplus):
    """Beta′ Laplus (Fourment et al. 2020): the Laplus with Beta-prime densities."""

    name: ClassVar[str] = "beta-prime-laplus"
    family: ClassVar[str] = "betaprime"


@dataclass
class GammaLaplusIS(MarginalLikelihoodEstimator):
    """Importance sampling with the Gamma Laplus product as proposal (``n_samples`` = 10⁴
    draws, Fourment et al. 2020 "GLIS"): log Z = log mean p(D, θ_i)/q(θ_i).
    Error: delta method.

    The delta-method error assumes the weights have a finite variance, which a product
    proposal fitted to local curvature does not guarantee (several branches at the
    bound, DS6). The diagnostics therefore hold the PSIS Pareto k̂ of the log weights
    (``pareto_k``, :func:`phylo.marginal.psis.pareto_khat`) and their Kish effective
    sample size (``importance_ess``), and ``warnings`` names k̂ above
    :data:`~phylo.marginal.psis.KHAT_UNRELIABLE`: the estimate and its standard error
    are then unreliable (Vehtari et al. 2024).

    Branches at the bound: the paper states no density for a MAP length of 0. Our
    earlier Exponential(rate −f′(0)) there gave heavy-tailed weights where many
    branches sit at 0: on the most frequent DS6 topology (50 taxa, 14 branches at 0)
    Pareto k̂ 5.3–6.4 and ESS 3–15 of 10⁴, log Z −6560.85 … −6559.89 over seeds. Its
    density falls off too slowly near 0 where the posterior also curves down
    (f″(0) ≈ −3·10⁴ … −4·10⁵ there), so most draws of the 14-branch product land where
    the posterior is small. Where f″(0) < 0 a second product puts on those branches the
    normal with the posterior's slope and curvature at 0, truncated to t ≥ 0
    (:func:`with_boundary_normals`), and the proposal is the equal mixture of the two
    (:class:`MixtureApproximation`): its weights are at most twice either product's,
    so it is never much worse than the better of them. Measured (10⁴ draws each):

    * DS6 most frequent topology, 12 seeds: log Z sd over seeds 0.50 → 0.13 nats
      (mean −6560.23; the old proposal with 10⁵ draws: −6560.27 ± 0.13), median k̂
      5.8 → 0.76, median ESS 9 → 158. The truncated normals alone: sd 0.12, but on
      topologies where the old product was fine they were worse (ESS 990 → 32).
    * DS6, 12 of the sample's topologies (benchmarks/tree_space.py's
      inner_tail_check picks): median k̂ 2.97 → 0.64, max 6.43 → 0.83, k̂ > 0.7 on
      6 → 5 of 12, min ESS 5 → 43.
    * DS1, three most frequent topologies (one branch at 0 each), 12 seeds: means
      move by 0.000, +0.006, −0.007 nats (SEs 0.013–0.025), seed sd 0.022/0.011/0.054
      → 0.031/0.012/0.040.

    Tried and dropped (DS6, k̂ over 3 seeds): the exponential widened (rate / 2, / 4:
    k̂ 12–27), every Gamma widened (rate / 2: 7–8), a 0.1/0.3 defensive mixture with a
    product widened that way (6–9); a Gamma moment-matched to the truncated normal
    (0.68–0.82 but ESS down to 16). What remains heavy-tailed on DS6 comes from ridges
    (a branch at 0 trading length with its neighbour) that no product density follows;
    the k̂ warning reports it. ``diagnostics["boundary_normals"]``: branches with a
    truncated normal in the second product."""

    name: ClassVar[str] = "gamma-laplus-is"
    setting_roles: ClassVar[dict[str, str]] = {"samples": "n_samples"}
    warmup_settings: ClassVar[dict[str, Any]] = {"n_samples": 4}
    n_samples: int = 10_000
    max_iterations: int = 2000
    device: str = "cpu"

    def validate(self, problem: BaseProblem) -> None:
        check_positive(self.name, n_samples=self.n_samples)
        check_device_setting(self.name, self.device)

    def _proposal(self, problem: BaseProblem
                  ) -> tuple[ProductApproximation | MixtureApproximation, float, dict]:
        """The importance density: the Gamma Laplus product at the MAP (:func:`fit_laplus`);
        where some branches at the bound are concave there, the equal mixture of it and
        the same product with truncated normals on those branches
        (:func:`with_boundary_normals`). Adds ``laplus_log_z`` (the Gamma Laplus value)
        and ``boundary_normals`` (branches with a truncated normal) to the diagnostics."""
        q, f0, diag = fit_laplus(problem, "gamma", max_iterations=self.max_iterations)
        m = np.asarray(diag["map_branch_lengths"])
        diag["laplus_log_z"] = f0 - float(q.log_density(m[None, :], q.mu[None, :])[0])
        q_normal, replaced = with_boundary_normals(q, np.asarray(diag["gradient_at_map"]),
                                                   np.asarray(diag["curvature_at_map"]))
        diag["boundary_normals"] = replaced
        return (MixtureApproximation((q, q_normal)) if replaced else q), f0, diag

    def _estimate(self, problem, *, rng, budget, progress, **options) -> Estimate:
        start = problem.n_likelihood_evaluations
        q, f0, diag = self._proposal(problem)
        n = self.n_samples if budget is None else max(2, budget - (problem.n_likelihood_evaluations - start))
        t, u = q.sample(n, rng=rng)
        t = np.maximum(t, np.finfo(float).tiny)
        z = np.hstack([np.log(t), u])
        ll = problem.log_likelihood_batch(z, device=self.device)
        # natural-space joint: prior density of t (not of log t) and of u
        lp = problem.log_prior_batch(z) - np.log(t).sum(axis=1)
        logw = ll + lp - q.log_density(t, u)
        logw = np.where(np.isnan(logw), -np.inf, logw)
        if not np.isfinite(logw).any():
            raise EstimatorError(f"{self.name}: every importance weight is zero")
        diag["n_draws"] = n
        diag.update(importance_diagnostics(logw, diag["branches_at_zero"]))
        return Estimate(logmeanexp(logw), log_mean_se(logw), diag)


def importance_diagnostics(logw: np.ndarray, branches_at_zero: int = 0) -> dict[str, Any]:
    """``pareto_k`` (PSIS k̂; None with too few draws), ``importance_ess`` (Kish) of the
    log importance weights ``logw`` (n,), and ``warnings`` (a list; one sentence when
    k̂ > :data:`~phylo.marginal.psis.KHAT_UNRELIABLE`)."""
    khat = pareto_khat(logw)
    ess = importance_ess(logw)
    warnings = []
    if math.isfinite(khat) and khat > KHAT_UNRELIABLE:
        at_zero = (f"; {branches_at_zero} branch lengths have their MAP at 0, where the "
                   "proposal's tail is only an approximation" if branches_at_zero else "")
        warnings.append(
            f"Pareto k-hat of the importance weights = {khat:.2f} > {KHAT_UNRELIABLE} "
            f"(ESS {ess:.1f} of {logw.shape[0]} draws){at_zero}: the weights are heavy-tailed, "
            "so log Z and its standard error are unreliable (check with a consistent "
            "estimator such as stepping-stone, or more draws)")
    return {"pareto_k": float(khat) if math.isfinite(khat) else None,
            "importance_ess": float(ess), "warnings": warnings}


@dataclass
class Laplace(MarginalLikelihoodEstimator):
    """Laplace approximation in z = (log t, u) (Kass & Raftery 1995):
    log Z ≈ f(ẑ) + (d/2) log 2π − ½ log det(−H(ẑ)), H the full Hessian of the z-space
    log posterior by finite differences of its gradient."""

    name: ClassVar[str] = "laplace"
    consistent: ClassVar[bool] = False
    max_iterations: int = 2000

    def _estimate(self, problem, *, rng, budget, progress, **options) -> Estimate:
        zhat, fhat = maximize_unconstrained(problem, max_iterations=self.max_iterations)
        h = hessian_unconstrained(problem, zhat)
        evals = np.linalg.eigvalsh(-h)
        clipped = int(np.sum(evals <= 0))
        evals = np.maximum(evals, 1e-10)
        d = problem.dim
        log_z = fhat + 0.5 * d * math.log(2 * math.pi) - 0.5 * float(np.log(evals).sum())
        return Estimate(log_z, None, {"mode": zhat.tolist(), "log_posterior_at_mode": fhat,
                                      "nonpositive_eigenvalues": clipped})


def hessian_unconstrained(problem: BaseProblem, z: np.ndarray) -> np.ndarray:
    """Symmetrised Hessian of the z-space log posterior, (dim, dim), central differences."""
    d = z.shape[0]
    h = np.empty((d, d))
    for i in range(d):
        step = HESSIAN_STEP * max(1.0, abs(z[i]))
        zp, zm = z.copy(), z.copy()
        zp[i] += step
        zm[i] -= step
        h[i] = (problem.log_posterior_gradient(zp)[1] - problem.log_posterior_gradient(zm)[1]) / (2 * step)
    return 0.5 * (h + h.T)
