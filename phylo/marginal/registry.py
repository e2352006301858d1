"""Estimator registry: kebab-case name → class (an explicit dict, no import-time side effects)."""
from __future__ import annotations

import difflib
from typing import Any

from ..errors import EstimatorError
from .base import MarginalLikelihoodEstimator
from . import estimators as _e

#: Every estimator of Fourment et al. (2020), in the paper's (DS.Rmd) order of families.
ESTIMATORS: dict[str, type[MarginalLikelihoodEstimator]] = {
    "harmonic-mean": _e.HarmonicMean,
    "stabilized-harmonic-mean": _e.StabilizedHarmonicMean,
    "naive-monte-carlo": _e.NaiveMonteCarlo,
    "path-sampling": _e.PathSampling,
    "modified-path-sampling": _e.ModifiedPathSampling,
    "stepping-stone": _e.SteppingStone,
    "generalized-stepping-stone": _e.GeneralizedSteppingStone,
    "bridge-sampling": _e.BridgeSampling,
    "laplace": _e.Laplace,
    "gamma-laplus": _e.GammaLaplus,
    "beta-prime-laplus": _e.BetaPrimeLaplus,
    "gamma-laplus-is": _e.GammaLaplusIS,
    "vb-is": _e.VariationalBayesIS,
    "elbo": _e.ELBO,
    "cpo": _e.CPO,
    "ppd": _e.PPD,
    "nested-sampling": _e.NestedSampling,
    "maximum-posterior": _e.MaximumPosterior,
    "maximum-likelihood": _e.MaximumLikelihood,
}


def available_estimators() -> list[str]:
    """The registered names, in registry order."""
    return list(ESTIMATORS)


def get_estimator(spec: str | MarginalLikelihoodEstimator, **settings: Any) -> MarginalLikelihoodEstimator:
    """An estimator from a registered name (with ``settings``) or an instance (returned as is).

    Raises :class:`EstimatorError` listing the valid names (and the closest) on a wrong
    name, or naming the valid settings on a wrong setting.
    """
    if isinstance(spec, MarginalLikelihoodEstimator):
        if settings:
            raise EstimatorError("settings can only be given with an estimator name, not an instance")
        return spec
    if not isinstance(spec, str):
        raise EstimatorError(f"expected an estimator name or instance, got {type(spec).__name__}")
    key = spec.strip().lower().replace("_", "-")
    cls = ESTIMATORS.get(key)
    if cls is None:
        close = difflib.get_close_matches(key, ESTIMATORS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise EstimatorError(f"unknown estimator {spec!r}{hint}; valid names: {', '.join(ESTIMATORS)}")
    try:
        return cls(**settings)
    except TypeError:
        import dataclasses
        valid = [f.name for f in dataclasses.fields(cls)]
        raise EstimatorError(f"{key}: invalid settings {sorted(settings)}; valid: {', '.join(valid)}") from None
