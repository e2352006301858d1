"""Trees as arrays for the kernels, and their construction."""
from .tree import Tree

__all__ = ["Tree"]
