"""Tree likelihoods (Felsenstein 1981), gradients (Ji et al. 2020), batches, simulation."""
from .engine import TreeLikelihood, log_likelihood
from .topologies import log_likelihood_topologies

__all__ = ["TreeLikelihood", "log_likelihood", "log_likelihood_topologies",
           "simulate_alignment"]


def __getattr__(name: str):
    if name == "simulate_alignment":
        from .simulate import simulate_alignment
        return simulate_alignment
    raise AttributeError(name)
