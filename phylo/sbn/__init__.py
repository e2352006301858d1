"""Subsplit Bayesian networks and tree-probability estimators (Zhang & Matsen 2018)."""
from ._index import METHODS
from .fit import fit
from .model import SBN, FitInfo
from .srf import SRF

__all__ = ["SBN", "SRF", "FitInfo", "fit", "METHODS", "load"]


def load(path):
    """Load a model saved with ``save`` (SBN, CCD or SRF)."""
    return SBN.load(path)
