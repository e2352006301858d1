"""The interface every marginal-likelihood estimator sees: a posterior on ℝ^d.

A problem is a posterior p(θ | D) ∝ p(D | θ) p(θ) on a fixed topology, where
θ = (t, φ): ``t`` the ``n_branches`` branch lengths (expected substitutions per site,
t ≥ 0) and φ the free model parameters. Estimators work on the unconstrained vector

    z = (log t, u),  shape (dim,) with dim = n_branches + n_model,

where ``u`` maps φ to ℝ^{n_model} (see :mod:`phylo.marginal.priors`). The prior
density of ``z`` includes the log-Jacobian of the map, so that
∫ p(D|z) p(z) dz = Z, the marginal likelihood of the topology. Everything is in
natural log.

Estimators of the Laplus family need the *natural* parametrisation of the branch
lengths (t, not log t): :meth:`BaseProblem.log_joint_natural` gives
log p(D|t, u) + log p(t) + log p(u) with the model parameters still unconstrained.

Every call of a likelihood method counts towards
:attr:`BaseProblem.n_likelihood_evaluations` (a batch of ``B`` counts ``B``; a
gradient counts one, finite differences over model parameters count what they
evaluate), which :class:`~phylo.marginal.base.MarginalLikelihoodEstimator` reports.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .priors import ExponentialPrior

#: Relative step of the central finite differences over model parameters.
FD_STEP = 1e-5


@dataclass(frozen=True)
class NumbaTarget:
    """A compiled log-likelihood for the Numba MCMC loop (:mod:`phylo._kernels.mcmc`).

    ``loglik(z, loglik_args) -> float`` and ``logprior(z, logprior_args) -> float``
    are ``@njit`` functions of the unconstrained vector ``z`` (dim,).
    """

    loglik: Any
    loglik_args: tuple
    logprior: Any
    logprior_args: tuple


class BaseProblem:
    """Abstract fixed-topology posterior; subclasses implement the ``_hooks``.

    Subclass contract (all in natural units, natural log):

    ``_log_likelihood(t, u) -> float``
    ``_log_likelihood_gradient(t, u) -> (float, d/dt (n_branches,))``  (gradient over
    ``u`` is taken by finite differences unless ``_log_likelihood_gradient_u`` exists)
    ``_pattern_log_likelihoods(t, u) -> (n_patterns,)`` with :attr:`pattern_weights`
    ``_model_log_prior(u) -> float`` (density of u, Jacobian included) and
    ``_sample_model_prior(n, rng) -> (n, n_model)`` when ``n_model > 0``.
    """

    n_branches: int
    n_model: int = 0
    branch_prior: ExponentialPrior
    pattern_weights: np.ndarray
    name: str = "problem"

    def __init__(self) -> None:
        self._evaluations = 0

    # -- bookkeeping ------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Length of the unconstrained vector z."""
        return self.n_branches + self.n_model

    @property
    def n_likelihood_evaluations(self) -> int:
        return self._evaluations

    def count(self, n: int) -> None:
        """Record ``n`` likelihood evaluations done outside the methods below."""
        self._evaluations += int(n)

    def split(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(t, u): branch lengths (n_branches,) and unconstrained model parameters."""
        z = np.asarray(z, dtype=np.float64)
        return np.exp(z[:self.n_branches]), z[self.n_branches:]

    def parameter_names(self) -> list[str]:
        return [f"log_t{i}" for i in range(self.n_branches)] + [f"u{i}" for i in range(self.n_model)]

    def initial_point(self) -> np.ndarray:
        """A reasonable starting z (branch lengths 0.1 unless the subclass knows better)."""
        return np.concatenate([np.full(self.n_branches, np.log(0.1)), np.zeros(self.n_model)])

    def numba_target(self) -> NumbaTarget | None:
        """Compiled log-likelihood for the fast MCMC loop, or None (Python loop)."""
        return None

    # -- likelihood ----------------------------------------------------------------
    def log_likelihood(self, z: np.ndarray) -> float:
        """log p(D | z), natural log; one evaluation."""
        t, u = self.split(z)
        self._evaluations += 1
        return float(self._log_likelihood(t, u))

    def log_likelihood_batch(self, z: np.ndarray, *, device: str = "cpu") -> np.ndarray:
        """log p(D | z_i) for ``z`` of shape (B, dim); returns (B,); B evaluations.
        ``device="cuda"``: the whole batch in one GPU launch, where the problem has a
        CUDA path (tree problems); otherwise :class:`phylo.errors.DeviceError`."""
        z = np.atleast_2d(np.asarray(z, dtype=np.float64))
        t, u = np.exp(z[:, :self.n_branches]), z[:, self.n_branches:]
        if device != "cpu":
            from ..likelihood.cuda import check_device
            check_device(device)
            out = self._log_likelihood_batch_cuda(t, u)
        else:
            out = self._log_likelihood_batch(t, u)
        self._evaluations += z.shape[0]
        return out

    def log_likelihood_gradient(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        """(log p(D|z), ∂/∂z (dim,)); z-gradient of branch i is t_i ∂/∂t_i."""
        t, u = self.split(z)
        ll, gt, gu = self._gradient_natural(t, u)
        return ll, np.concatenate([gt * t, gu])

    def pattern_log_likelihoods(self, z: np.ndarray) -> np.ndarray:
        """Per-pattern log-likelihoods (n_patterns,); weight them by :attr:`pattern_weights`."""
        t, u = self.split(z)
        self._evaluations += 1
        return np.asarray(self._pattern_log_likelihoods(t, u), dtype=np.float64)

    # -- prior -------------------------------------------------------------------------
    def log_prior(self, z: np.ndarray) -> float:
        """log p(z) including the log-Jacobian of the map to z."""
        z = np.asarray(z, dtype=np.float64)
        zb = z[:self.n_branches]
        rate = self.branch_prior.rate
        lp = self.n_branches * np.log(rate) - rate * np.exp(zb).sum() + zb.sum()
        if self.n_model:
            lp += self._model_log_prior(z[self.n_branches:])
        return float(lp)

    def log_prior_batch(self, z: np.ndarray) -> np.ndarray:
        z = np.atleast_2d(np.asarray(z, dtype=np.float64))
        zb = z[:, :self.n_branches]
        rate = self.branch_prior.rate
        lp = self.n_branches * np.log(rate) - rate * np.exp(zb).sum(axis=1) + zb.sum(axis=1)
        if self.n_model:
            lp = lp + np.array([self._model_log_prior(row[self.n_branches:]) for row in z])
        return lp

    def log_prior_gradient(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        g = np.empty(self.dim)
        g[:self.n_branches] = 1.0 - self.branch_prior.rate * np.exp(z[:self.n_branches])
        if self.n_model:
            g[self.n_branches:] = _fd_gradient(self._model_log_prior, z[self.n_branches:])
        return g

    def sample_prior(self, n: int, *, rng: np.random.Generator) -> np.ndarray:
        """``n`` exact prior draws in z, shape (n, dim)."""
        t = self.branch_prior.sample(n, rng=rng) if self.n_branches else np.empty((n, 0))
        z = np.log(np.maximum(t, np.finfo(float).tiny))
        if self.n_model:
            z = np.hstack([z, self._sample_model_prior(n, rng)])
        return z

    # -- posterior ---------------------------------------------------------------------------
    def log_posterior(self, z: np.ndarray, beta: float = 1.0) -> float:
        """β log p(D|z) + log p(z): the power posterior (unnormalised)."""
        return beta * self.log_likelihood(z) + self.log_prior(z)

    def log_posterior_gradient(self, z: np.ndarray, beta: float = 1.0) -> tuple[float, np.ndarray]:
        ll, g = self.log_likelihood_gradient(z)
        return beta * ll + self.log_prior(z), beta * g + self.log_prior_gradient(z)

    def log_posterior_batch(self, z: np.ndarray, beta: float = 1.0, *,
                            device: str = "cpu") -> np.ndarray:
        return beta * self.log_likelihood_batch(z, device=device) + self.log_prior_batch(z)

    # -- natural branch lengths (Laplus family) -------------------------------------------
    def log_joint_natural(self, t: np.ndarray, u: np.ndarray | None = None) -> float:
        """log p(D | t, u) + log p(t) + log p(u); t ≥ 0 branch lengths (n_branches,)."""
        u = np.zeros(0) if u is None else np.asarray(u, dtype=np.float64)
        t = np.asarray(t, dtype=np.float64)
        self._evaluations += 1
        lp = self.branch_prior.log_density(t) + (self._model_log_prior(u) if self.n_model else 0.0)
        return float(self._log_likelihood(t, u) + lp)

    def log_joint_natural_gradient(self, t: np.ndarray, u: np.ndarray | None = None
                                   ) -> tuple[float, np.ndarray, np.ndarray]:
        """(log joint, ∂/∂t (n_branches,), ∂/∂u (n_model,))."""
        u = np.zeros(0) if u is None else np.asarray(u, dtype=np.float64)
        t = np.asarray(t, dtype=np.float64)
        ll, gt, gu = self._gradient_natural(t, u)
        lp = self.branch_prior.log_density(t)
        gt = gt - self.branch_prior.rate
        if self.n_model:
            lp += self._model_log_prior(u)
            gu = gu + _fd_gradient(self._model_log_prior, u)
        return float(ll + lp), gt, gu

    # -- helpers for subclasses -----------------------------------------------------------
    def _gradient_natural(self, t: np.ndarray, u: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        self._evaluations += 1
        ll, gt = self._log_likelihood_gradient(t, u)
        gu = np.zeros(self.n_model)
        if self.n_model:
            def f(v: np.ndarray) -> float:
                return self._log_likelihood(t, v)
            gu = _fd_gradient(f, u)
            self._evaluations += 2 * self.n_model
        return float(ll), np.asarray(gt, dtype=np.float64), gu

    def _log_likelihood_batch(self, t: np.ndarray, u: np.ndarray) -> np.ndarray:
        return np.array([self._log_likelihood(ti, ui) for ti, ui in zip(t, u)])

    def _log_likelihood_batch_cuda(self, t: np.ndarray, u: np.ndarray) -> np.ndarray:
        from ..errors import DeviceError
        raise DeviceError(f"{type(self).__name__} has no CUDA likelihood; use device='cpu'")

    def _log_likelihood(self, t: np.ndarray, u: np.ndarray) -> float:  # pragma: no cover
        raise NotImplementedError

    def _log_likelihood_gradient(self, t: np.ndarray, u: np.ndarray) -> tuple[float, np.ndarray]:
        raise NotImplementedError  # pragma: no cover

    def _pattern_log_likelihoods(self, t: np.ndarray, u: np.ndarray) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover

    def _model_log_prior(self, u: np.ndarray) -> float:
        return 0.0

    def _sample_model_prior(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.empty((n, 0))

    def describe(self) -> dict[str, Any]:
        """Provenance of the problem for results and reports."""
        return {"name": self.name, "n_branches": self.n_branches, "n_model": self.n_model,
                "branch_prior_rate": self.branch_prior.rate}


def _fd_gradient(f: Callable[[np.ndarray], float], x: np.ndarray) -> np.ndarray:
    """Central finite differences of a scalar function, shape (len(x),)."""
    g = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        h = FD_STEP * max(1.0, abs(x[i]))
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        g[i] = (f(xp) - f(xm)) / (2 * h)
    return g
