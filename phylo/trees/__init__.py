"""Trees as arrays for the kernels, and their construction."""
from .splits import TopologySample, split_counts, split_frequencies
from .tree import Tree

__all__ = ["Tree", "TopologySample", "split_counts", "split_frequencies", "random_tree",
           "neighbor_joining"]


def __getattr__(name: str):
    if name == "random_tree":
        from .random import random_tree
        return random_tree
    if name == "neighbor_joining":
        from .nj import neighbor_joining
        return neighbor_joining
    raise AttributeError(f"module 'phylo.trees' has no attribute {name!r}")
