"""Single-cell genotype matrices: noise, exact checks and inference.

A genotype matrix is int8[cells, mutations] with 0, 1, 2 (homozygous mutant
call) and :data:`MISSING` (3). See :mod:`phylo.noise.model` for the error
models (SCITE's binary and ternary).
See :mod:`phylo.noise.io` (SCITE/PhISCS files), :mod:`phylo.noise.simulate`,
:mod:`phylo.noise.checks` (Gusfield 1991 three-gametes test, linearity),
:mod:`phylo.noise.inference` (ML conflict-free matrix; Jahn et al. 2016,
Malikic et al. 2019) and :mod:`phylo.noise.hypothesis` (noise and branching
tests and Bayesian classifiers, the tasks of Sadeqi Azer et al. 2020).
"""
from __future__ import annotations

from .checks import (Linearity, PerfectPhylogeny, is_conflict_free, is_linear, linearity,
                     perfect_phylogeny)
from .hypothesis import (Classification, TestResult, branching_probability, branching_test,
                         noise_probability, noise_test, parallel_mutation_probability)
from .inference import (Solution, estimate_rates, log_likelihood, solve, solve_linear,
                        tree_log_likelihood, tree_newick)
from .io import MISSING, GenotypeMatrix, read_matrix, read_names, write_matrix, write_names
from .model import ErrorModel
from .posterior import Posterior, sample_posterior, write_posterior
from .simulate import (SimulatedMatrix, add_noise, add_parallel_mutations,
                       random_mutation_tree, simulate, tree_matrix, uniform_mutation_tree)

__all__ = [
    "MISSING", "GenotypeMatrix", "read_matrix", "write_matrix", "read_names", "write_names",
    "ErrorModel", "Posterior", "sample_posterior", "write_posterior",
    "SimulatedMatrix", "simulate", "add_noise", "add_parallel_mutations",
    "random_mutation_tree", "uniform_mutation_tree", "tree_matrix",
    "PerfectPhylogeny", "Linearity", "perfect_phylogeny", "is_conflict_free",
    "linearity", "is_linear",
    "Solution", "solve", "solve_linear", "log_likelihood", "estimate_rates", "tree_newick",
    "tree_log_likelihood",
    "TestResult", "noise_test", "branching_test",
    "Classification", "noise_probability", "branching_probability",
    "parallel_mutation_probability",
]
