"""The 19 estimators of Fourment et al. (2020), grouped by what they sample.

posterior_sample: harmonic mean, stabilised HM, naive Monte Carlo, bridge sampling, CPO, PPD
power_posterior:  stepping stone, path sampling, modified PS, generalised SS
laplace:          Laplace, Gamma Laplus, Beta′ Laplus, Gamma Laplus IS
variational:      ELBO, VB importance sampling
nested:           nested sampling
optimum:          maximum posterior, maximum likelihood
"""
from .laplace import BetaPrimeLaplus, GammaLaplus, GammaLaplusIS, Laplace
from .nested import NestedSampling
from .optimum import MaximumLikelihood, MaximumPosterior
from .posterior_sample import (CPO, PPD, BridgeSampling, HarmonicMean, NaiveMonteCarlo,
                               StabilizedHarmonicMean)
from .power_posterior import (GeneralizedSteppingStone, ModifiedPathSampling, PathSampling,
                              SteppingStone)
from .variational import ELBO, VariationalBayesIS

__all__ = [
    "BetaPrimeLaplus", "BridgeSampling", "CPO", "ELBO", "GammaLaplus", "GammaLaplusIS",
    "GeneralizedSteppingStone", "HarmonicMean", "Laplace", "MaximumLikelihood",
    "MaximumPosterior", "ModifiedPathSampling", "NaiveMonteCarlo", "NestedSampling", "PPD",
    "PathSampling", "StabilizedHarmonicMean", "SteppingStone", "VariationalBayesIS",
]
