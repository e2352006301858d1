"""Priors of the fixed-topology posterior and their unconstrained parametrisations.

Every prior here is a density on a constrained space (branch lengths ≥ 0, a
simplex, a positive shape, …) together with a bijection to an unconstrained real
vector ``u``; :meth:`Prior.log_density_unconstrained` returns the density of ``u``,
that is the prior density plus the log-Jacobian of the inverse map, so that MCMC,
optimisation and variational fits can work on ℝ^d without further care (natural
log throughout).

The defaults follow Fourment et al. (2020, Syst Biol 69:209, "19 dubious ways"):
i.i.d. Exponential(rate 10) branch lengths in expected substitutions per site; for
models with free parameters the usual MrBayes/BEAST choices: flat Dirichlet on the
base frequencies and on the six GTR exchangeabilities, Exponential(1) on the gamma
shape, LogNormal(1, 1.25) on the HKY κ, Uniform(0, 1) on the proportion of
invariant sites.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from ..errors import EstimatorError


class Prior:
    """A prior on ``size`` constrained values with a bijection to ℝ^``n_free``."""

    size: int
    n_free: int

    def log_density(self, x: np.ndarray) -> float:  # pragma: no cover - interface
        raise NotImplementedError

    def to_unconstrained(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def to_constrained(self, u: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def log_jacobian(self, u: np.ndarray) -> float:  # pragma: no cover
        """log |d x / d u| of :meth:`to_constrained` at ``u``."""
        raise NotImplementedError

    def sample(self, n: int, *, rng: np.random.Generator) -> np.ndarray:  # pragma: no cover
        """``n`` independent draws, shape (n, size), constrained space."""
        raise NotImplementedError

    def log_density_unconstrained(self, u: np.ndarray) -> float:
        """Prior density of the unconstrained vector ``u`` (log-Jacobian included)."""
        return self.log_density(self.to_constrained(u)) + self.log_jacobian(u)


@dataclass(frozen=True)
class ExponentialPrior(Prior):
    """i.i.d. Exponential(``rate``) on ``size`` positive values; u = log x."""

    rate: float = 10.0
    size: int = 1

    def __post_init__(self) -> None:
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise EstimatorError(f"an exponential prior needs a positive finite rate, got {self.rate}")

    @property
    def n_free(self) -> int:  # type: ignore[override]
        return self.size

    def log_density(self, x: np.ndarray) -> float:
        x = np.asarray(x, dtype=np.float64)
        if np.any(x < 0):
            return -math.inf
        return float(self.size * math.log(self.rate) - self.rate * x.sum())

    def to_unconstrained(self, x: np.ndarray) -> np.ndarray:
        return np.log(np.asarray(x, dtype=np.float64))

    def to_constrained(self, u: np.ndarray) -> np.ndarray:
        return np.exp(np.asarray(u, dtype=np.float64))

    def log_jacobian(self, u: np.ndarray) -> float:
        return float(np.sum(u))

    def sample(self, n: int, *, rng: np.random.Generator) -> np.ndarray:
        return rng.exponential(1.0 / self.rate, size=(n, self.size))


@dataclass(frozen=True)
class GammaPrior(Prior):
    """Gamma(``shape``, ``rate``) on one positive value; u = log x."""

    shape: float = 1.0
    rate: float = 1.0
    size: int = 1
    n_free: int = 1

    def log_density(self, x: np.ndarray) -> float:
        x = float(np.asarray(x).reshape(-1)[0])
        if x <= 0:
            return -math.inf
        return float(self.shape * math.log(self.rate) - special.gammaln(self.shape)
                     + (self.shape - 1) * math.log(x) - self.rate * x)

    def to_unconstrained(self, x: np.ndarray) -> np.ndarray:
        return np.log(np.asarray(x, dtype=np.float64).reshape(1))

    def to_constrained(self, u: np.ndarray) -> np.ndarray:
        return np.exp(np.asarray(u, dtype=np.float64).reshape(1))

    def log_jacobian(self, u: np.ndarray) -> float:
        return float(np.asarray(u).reshape(-1)[0])

    def sample(self, n: int, *, rng: np.random.Generator) -> np.ndarray:
        return rng.gamma(self.shape, 1.0 / self.rate, size=(n, 1))


@dataclass(frozen=True)
class LogNormalPrior(Prior):
    """LogNormal(``mu``, ``sigma``) on one positive value (BEAST's κ prior); u = log x."""

    mu: float = 1.0
    sigma: float = 1.25
    size: int = 1
    n_free: int = 1

    def log_density(self, x: np.ndarray) -> float:
        x = float(np.asarray(x).reshape(-1)[0])
        if x <= 0:
            return -math.inf
        z = (math.log(x) - self.mu) / self.sigma
        return float(-0.5 * z * z - math.log(x * self.sigma) - 0.5 * math.log(2 * math.pi))

    to_unconstrained = GammaPrior.to_unconstrained
    to_constrained = GammaPrior.to_constrained
    log_jacobian = GammaPrior.log_jacobian

    def sample(self, n: int, *, rng: np.random.Generator) -> np.ndarray:
        return np.exp(rng.normal(self.mu, self.sigma, size=(n, 1)))


@dataclass(frozen=True)
class UniformPrior(Prior):
    """Uniform(0, 1) on one value (proportion of invariant sites); u = logit x."""

    size: int = 1
    n_free: int = 1

    def log_density(self, x: np.ndarray) -> float:
        x = float(np.asarray(x).reshape(-1)[0])
        return 0.0 if 0.0 < x < 1.0 else -math.inf

    def to_unconstrained(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).reshape(1)
        return np.log(x) - np.log1p(-x)

    def to_constrained(self, u: np.ndarray) -> np.ndarray:
        return special.expit(np.asarray(u, dtype=np.float64).reshape(1))

    def log_jacobian(self, u: np.ndarray) -> float:
        u = float(np.asarray(u).reshape(-1)[0])
        return float(-np.logaddexp(0.0, u) - np.logaddexp(0.0, -u))

    def sample(self, n: int, *, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(size=(n, 1))


@dataclass(frozen=True)
class DirichletPrior(Prior):
    """Dirichlet(``concentration``) on a ``size``-simplex; additive log-ratio map.

    u_k = log(x_k / x_K) for k < K; the inverse is the softmax of (u, 0), whose
    log-Jacobian on the simplex is Σ_k log x_k (all K components).
    """

    size: int = 4
    concentration: float = 1.0

    @property
    def n_free(self) -> int:  # type: ignore[override]
        return self.size - 1

    def log_density(self, x: np.ndarray) -> float:
        x = np.asarray(x, dtype=np.float64)
        if np.any(x <= 0) or abs(x.sum() - 1.0) > 1e-8:
            return -math.inf
        a = self.concentration
        return float(special.gammaln(a * self.size) - self.size * special.gammaln(a)
                     + (a - 1) * np.log(x).sum())

    def to_unconstrained(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        x = x / x.sum()
        return np.log(x[:-1]) - math.log(x[-1])

    def to_constrained(self, u: np.ndarray) -> np.ndarray:
        full = np.append(np.asarray(u, dtype=np.float64), 0.0)
        full -= full.max()
        e = np.exp(full)
        return e / e.sum()

    def log_jacobian(self, u: np.ndarray) -> float:
        return float(np.log(self.to_constrained(u)).sum())

    def sample(self, n: int, *, rng: np.random.Generator) -> np.ndarray:
        return rng.dirichlet(np.full(self.size, self.concentration), size=n)


def default_model_priors(free: tuple[str, ...]) -> dict[str, Prior]:
    """The default prior of each free model parameter name (see module docstring).

    Names follow :meth:`phylo.models.Model.free_parameters`: ``frequencies``,
    ``exchangeabilities``, ``kappa``, ``gamma_shape``, ``pinv``.
    """
    table: dict[str, Prior] = {
        "frequencies": DirichletPrior(size=4),
        "exchangeabilities": DirichletPrior(size=6),
        "kappa": LogNormalPrior(1.0, 1.25),
        "gamma_shape": GammaPrior(1.0, 1.0),   # Exponential(1)
        "pinv": UniformPrior(),
    }
    out: dict[str, Prior] = {}
    for name in free:
        if name not in table:
            raise EstimatorError(f"no default prior for model parameter {name!r}; "
                                 f"known: {', '.join(table)}")
        out[name] = table[name]
    return out
