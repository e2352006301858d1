"""Reading and writing data: alignments, Newick strings, tree files."""
from .alignment import Alignment, read_alignment
from .newick import parse_newick

__all__ = ["Alignment", "read_alignment", "parse_newick", "read_trees", "read_topologies",
           "count_trees"]


def __getattr__(name: str):
    # the tree-file readers pull in Numba; import them only when asked for
    if name in ("read_trees", "read_topologies", "count_trees"):
        from . import trees
        return getattr(trees, name)
    raise AttributeError(f"module 'phylo.io' has no attribute {name!r}")
