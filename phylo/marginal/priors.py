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

These objects are the one source of truth for the priors: :class:`~phylo.marginal.Problem`
samples and evaluates them, and :func:`prior_table` states them (reports print it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from ..errors import EstimatorError

#: Default rate of the i.i.d. Exponential prior on branch lengths (mean 0.1
#: substitutions per site; MrBayes' default, Fourment et al. 2020).
DEFAULT_BRANCH_PRIOR_RATE = 10.0


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

    def describe(self) -> str:  # pragma: no cover - interface
        """The distribution in words, e.g. ``"LogNormal(μ = 1, σ = 1.25)"``."""
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

    def describe(self) -> str:
        return f"Exponential(rate {_num(self.rate)}), mean {_num(1.0 / self.rate)}"

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

    def describe(self) -> str:
        if self.shape == 1.0:
            return f"Exponential(rate {_num(self.rate)}) = Gamma(shape 1, rate {_num(self.rate)})"
        return f"Gamma(shape {_num(self.shape)}, rate {_num(self.rate)})"

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

    def describe(self) -> str:
        return (f"LogNormal(μ = {_num(self.mu)}, σ = {_num(self.sigma)}) "
                f"(median {_num(math.exp(self.mu), 3)})")

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

    def describe(self) -> str:
        return "Uniform(0, 1)"

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

    def describe(self) -> str:
        flat = " (flat)" if self.concentration == 1.0 else ""
        return f"Dirichlet({', '.join([_num(self.concentration)] * self.size)}){flat}"

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


#: The model parameter groups in their fixed order, with the names of
#: :meth:`phylo.models.Model.free_parameters` that belong to each.
MODEL_PARAMETER_GROUPS: tuple[tuple[str, str], ...] = (
    ("kappa", "κ (transition/transversion rate ratio)"),
    ("exchangeabilities", "GTR exchangeabilities (relative rates of the six substitution types)"),
    ("frequencies", "base frequencies π"),
    ("gamma_shape", "Γ shape α (among-site rate variation)"),
    ("pinv", "proportion of invariant sites"),
)


def parameter_groups(free: tuple[str, ...]) -> tuple[str, ...]:
    """The prior groups of a model's free parameter names (``kappa``, ``rate_AC``,
    ``pi_A``, …, as :meth:`phylo.models.Model.free_parameters` names them), in the
    fixed order of :data:`MODEL_PARAMETER_GROUPS`."""
    present = {"kappa": "kappa" in free,
               "exchangeabilities": any(n.startswith("rate_") for n in free),
               "frequencies": any(n.startswith("pi_") for n in free),
               "gamma_shape": "gamma_shape" in free,
               "pinv": "pinv" in free}
    return tuple(name for name, _ in MODEL_PARAMETER_GROUPS if present[name])


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


def prior_table(models, *, branch_prior_rate: float = DEFAULT_BRANCH_PRIOR_RATE
                ) -> list[dict[str, object]]:
    """The priors of the fixed-topology posteriors of ``models``, stated for a report.

    ``models``: :class:`phylo.models.Model` objects or IQ-TREE strings (a mapping
    ``{label: model}`` labels them). One row per parameter group present in any
    model: ``{"parameter", "prior", "models"}`` (``models``: the labels whose
    posterior has that parameter free), branch lengths first. The descriptions come
    from the same prior objects :class:`~phylo.marginal.Problem` uses.
    """
    from ..models import Model
    labelled = dict(models) if isinstance(models, dict) else {str(m) if isinstance(m, str)
                                                               else m.to_string(): m
                                                               for m in models}
    branch = ExponentialPrior(float(branch_prior_rate), 1)
    rows: list[dict[str, object]] = [{
        "parameter": "branch lengths (expected substitutions per site)",
        "prior": "i.i.d. " + branch.describe(), "models": list(labelled)}]
    users: dict[str, list[str]] = {}
    for label, model in labelled.items():
        model = Model.from_string(model) if isinstance(model, str) else model
        for group in parameter_groups(tuple(model.free_parameters())):
            users.setdefault(group, []).append(label)
    priors = default_model_priors(tuple(users))
    for group, words in MODEL_PARAMETER_GROUPS:
        if group in users:
            rows.append({"parameter": words, "prior": priors[group].describe(),
                         "models": users[group]})
    return rows


def _num(x: float, digits: int = 6) -> str:
    """A number in few characters (10, 0.1, 1.25, 2.718)."""
    return f"{x:.{digits}g}"
