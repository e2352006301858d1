"""Subsplit Bayesian networks and tree-probability estimators (Zhang & Matsen 2018)."""
from .model import METHODS, SBN, SRF, FitInfo, fit

__all__ = ["SBN", "SRF", "FitInfo", "fit", "METHODS", "load"]


def load(path):
    """Load a model saved with ``save`` (SBN, CCD or SRF)."""
    return SBN.load(path)
