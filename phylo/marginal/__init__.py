"""Marginal likelihoods of a fixed topology: problems, samplers and the 19 estimators
of Fourment et al. (2020, Syst Biol 69:209, "19 dubious ways to compute the marginal
likelihood of a phylogenetic tree topology") behind one interface.

>>> problem = Problem(alignment, tree, "JC", branch_prior_rate=10)   # doctest: +SKIP
>>> get_estimator("stepping-stone").run(problem, seed=1)            # doctest: +SKIP
>>> compare(problem, ["gamma-laplus", "harmonic-mean"], repeats=3)   # doctest: +SKIP
>>> compare_candidates(alignment, [CandidateSpec("HKY+G4", newick, "HKY on T1")],
...                    "stepping-stone", seed=1, repeats=3)               # doctest: +SKIP
"""
from .base import Estimate, MarginalLikelihoodEstimator, MarginalLikelihoodResult
from .base_problem import BaseProblem, NumbaTarget
from .checkpoint import CheckpointStore, LadderCheckpoint
from .compare import ComparisonTable, compare
from .estimators import *  # noqa: F401,F403 - the estimator classes
from .estimators import __all__ as _estimator_names
from .mcmc import (ChainResult, ChainState, LadderResult, Sampler, beta_ladder,
                   effective_sample_size, run_ladder, sample_posterior)
from .priors import (DirichletPrior, ExponentialPrior, GammaPrior, LogNormalPrior, Prior,
                     UniformPrior)
from .problem import Problem
from .registry import ESTIMATORS, available_estimators, get_estimator
from .toy import PoissonGammaProblem
from .workflow import (CandidateSpec, Comparison, TaskResult, compare_candidates,
                       comparison_fingerprint, derive_seed, evaluate_candidate)
from .candidates import (CandidateSet, CladeEvidence, clade_bayes_factors,
                         fixed_topology_candidates, tree_space_candidates)
from .tree_space import (CladeBayesFactor, TopologyEstimate, TreeSpaceEstimator, TreeSpaceProblem,
                         TreeSpaceSample, clade_bayes_factor, read_topology_probabilities,
                         read_tree_sample,
                         tree_space_marginal)

__all__ = [
    "CandidateSpec", "CheckpointStore", "Comparison", "TaskResult", "compare_candidates",
    "comparison_fingerprint", "derive_seed", "evaluate_candidate",
    "CandidateSet", "CladeEvidence", "clade_bayes_factors", "fixed_topology_candidates",
    "tree_space_candidates",
    "BaseProblem", "ChainResult", "ChainState", "ComparisonTable", "DirichletPrior", "ESTIMATORS",
    "Estimate", "ExponentialPrior", "GammaPrior", "LadderCheckpoint", "LadderResult",
    "LogNormalPrior", "MarginalLikelihoodEstimator", "MarginalLikelihoodResult", "NumbaTarget",
    "PoissonGammaProblem", "Prior", "Problem", "Sampler", "UniformPrior", "available_estimators",
    "beta_ladder", "compare", "effective_sample_size", "get_estimator", "run_ladder",
    "sample_posterior", "tree_space_marginal", "clade_bayes_factor", "read_tree_sample",
    "read_topology_probabilities",
    "TreeSpaceSample", "TopologyEstimate", "CladeBayesFactor", "TreeSpaceProblem",
    "TreeSpaceEstimator", *_estimator_names,
]
