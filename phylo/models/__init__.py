"""Substitution models (JC69, F81, K80, HKY85, GTR; +F, +G, +I) in IQ-TREE syntax."""
from .gamma import discrete_gamma_rates
from .substitution import EXCHANGEABILITY_ORDER, VALID_NAMES, Model, empirical_frequencies

__all__ = ["Model", "discrete_gamma_rates", "empirical_frequencies",
           "EXCHANGEABILITY_ORDER", "VALID_NAMES"]
