"""The fixed-topology phylogenetic posterior (Fourment et al. 2020, METHODS.md §2).

``Problem(alignment, tree, model="JC", branch_prior_rate=10)`` is the posterior of
the branch lengths (and free model parameters) of one unrooted topology:

    p(t, φ | D, τ) ∝ p(D | t, φ, τ) · Π_b Exponential(t_b; rate) · p(φ),

with the likelihood of the shared kernel (:class:`phylo.likelihood.TreeLikelihood`;
no second likelihood is written here). Branch lengths are in expected substitutions
per site, indexed as the kernel's tree (branch v above node v, 2S − 3 branches).
Model parameters listed by :meth:`phylo.models.Model.free_parameters` get the
default priors of :mod:`phylo.marginal.priors` (Dirichlet on frequencies and on the
six exchangeabilities, Exponential(1) on the gamma shape, LogNormal(1, 1.25) on κ,
Uniform(0, 1) on pinv) and are estimated unless ``estimate_model=False``.

Unconstrained vector z = (log t (n_branches,), u (n_model,)); see
:mod:`phylo.marginal.base_problem` for the interface every estimator uses.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .._kernels import densities as _dens
from .._kernels import models as _km
from .._kernels.pruning import MODEL_PI
from ..errors import EstimatorError, ModelError
from ..io.alignment import Alignment
from ..trees.tree import Tree
from .base_problem import BaseProblem, NumbaTarget
from .priors import (DEFAULT_BRANCH_PRIOR_RATE, DirichletPrior, ExponentialPrior, GammaPrior,
                     LogNormalPrior, Prior, UniformPrior, default_model_priors, parameter_groups,
                     prior_table)

#: Branch length used where the tree gives none (and for zero-length starting branches).
DEFAULT_START_LENGTH = 0.1


def _kernel_arguments(lik) -> tuple:
    """The arguments after ``bl`` of :func:`phylo._kernels.pruning.log_likelihood`,
    with private scratch buffers (:meth:`TreeLikelihood.kernel_arguments`)."""
    return lik.kernel_arguments().loglik_args()


class ModelSpec(NamedTuple):
    """Arrays that let compiled code build the packed model and its prior at u:
    ``free`` int64 (5,) FREE_* flags, ``fixed`` (N_FIXED,) values of the parts not
    free, ``prior`` (N_PRIOR,) prior parameters (:mod:`phylo._kernels.models`),
    ``invariant_basis`` (4, n_blocks × block_size) with +I (else None) and
    ``packed_length`` (MODEL_RATES + 2C + 1)."""
    free: np.ndarray
    fixed: np.ndarray
    prior: np.ndarray
    invariant_basis: np.ndarray | None
    packed_length: int


class _Block:
    """One free model parameter group: its prior and how it maps into Model.replace."""

    def __init__(self, key: str, prior: Prior) -> None:
        self.key = key
        self.prior = prior

    @property
    def n_free(self) -> int:
        return self.prior.n_free


class Problem(BaseProblem):
    """Posterior of branch lengths (and free model parameters) on a fixed topology.

    Parameters
    ----------
    alignment: the data (:class:`phylo.io.alignment.Alignment`).
    tree: the fixed topology; a rooted binary tree is unrooted first. Its branch
        lengths, when present, are the starting point of samplers and optimisers.
    model: a :class:`phylo.models.Model` or IQ-TREE string ("JC", "HKY+G4", …).
    branch_prior_rate: rate λ of the i.i.d. Exponential prior on branch lengths
        (default 10, mean 0.1, as MrBayes and Fourment et al. 2020).
    estimate_model: treat the model's free parameters as unknown (default) or fixed.
    name: label used in tables.
    """

    def __init__(self, alignment: Alignment, tree: Tree, model: Any = "JC", *,
                 branch_prior_rate: float = DEFAULT_BRANCH_PRIOR_RATE, estimate_model: bool = True,
                 name: str | None = None, threads: int | None = None,
                 block_size: int | None = None) -> None:
        super().__init__()
        from ..likelihood import TreeLikelihood
        from ..models import Model
        if not isinstance(alignment, Alignment):
            raise EstimatorError(f"expected an Alignment, got {type(alignment).__name__}")
        if isinstance(model, str):
            model = Model.from_string(model)
        if tree.rooted or tree.n_children[tree.root] == 2:
            tree = tree.unrooted()
        # threads / block_size: the likelihood's pattern-parallel evaluation
        # (TreeLikelihood); the MCMC loops run with the likelihood's thread count
        self.likelihood = TreeLikelihood(alignment, tree, model, threads=threads,
                                         block_size=block_size)
        self.model = self.likelihood.model
        self.tree = self.likelihood.tree
        self.alignment = alignment
        self.n_branches = self.likelihood.n_branches
        self.branch_prior = ExponentialPrior(float(branch_prior_rate), self.n_branches)
        self.pattern_weights = np.asarray(alignment.weights, dtype=np.float64)
        self.name = name or (tree.name or "problem")
        self._blocks = self._model_blocks(self.model.free_parameters()) if estimate_model else []
        self.n_model = sum(b.n_free for b in self._blocks)
        self._cache: tuple[bytes, Any] | None = None
        self._spec = self._compiled_spec() if self._blocks else None
        self._numba_args: tuple | None = None
        self._cuda = None          # device state, built on the first device="cuda" batch

    # -- model parameters ---------------------------------------------------------
    @staticmethod
    def _model_blocks(free: tuple[str, ...]) -> list[_Block]:
        """Free parameter names (``Model.free_parameters``: ``rate_AC``, ``pi_A``, ...)
        grouped into blocks, in a fixed order, each with its default prior."""
        names = parameter_groups(free)
        return [_Block(name, prior) for name, prior in default_model_priors(names).items()]

    def _model_values(self) -> np.ndarray:
        """Current model parameters as an unconstrained vector u (n_model,)."""
        parts = []
        for b in self._blocks:
            if b.key == "kappa":
                parts.append(b.prior.to_unconstrained(np.array([self.model.kappa])))
            elif b.key == "exchangeabilities":
                parts.append(b.prior.to_unconstrained(self.model.exchangeabilities))
            elif b.key == "frequencies":
                parts.append(b.prior.to_unconstrained(self.model.frequencies))
            elif b.key == "gamma_shape":
                parts.append(b.prior.to_unconstrained(np.array([self.model.gamma_shape])))
            else:
                parts.append(b.prior.to_unconstrained(np.array([min(max(self.model.pinv, 0.01), 0.99)])))
        return np.concatenate(parts) if parts else np.zeros(0)

    def _compiled_spec(self) -> "ModelSpec":
        """The free blocks, fixed values and prior parameters as arrays for the compiled
        model builder and prior (:func:`phylo._kernels.models.packed_from_unconstrained`,
        :func:`phylo._kernels.densities.model_log_prior`)."""
        m = self.model
        free = np.zeros(_km.N_FREE_FLAGS, dtype=np.int64)
        prior = np.zeros(_km.N_PRIOR)
        flag = {"kappa": _km.FREE_KAPPA, "exchangeabilities": _km.FREE_EXCHANGEABILITIES,
                "frequencies": _km.FREE_FREQUENCIES, "gamma_shape": _km.FREE_GAMMA_SHAPE,
                "pinv": _km.FREE_PINV}
        for b in self._blocks:
            free[flag[b.key]] = 1
            p = b.prior
            if b.key == "kappa" and isinstance(p, LogNormalPrior):
                prior[_km.PRIOR_KAPPA_MU], prior[_km.PRIOR_KAPPA_SIGMA] = p.mu, p.sigma
            elif b.key == "exchangeabilities" and isinstance(p, DirichletPrior) and p.size == 6:
                prior[_km.PRIOR_EXCH_CONC] = p.concentration
            elif b.key == "frequencies" and isinstance(p, DirichletPrior) and p.size == 4:
                prior[_km.PRIOR_FREQ_CONC] = p.concentration
            elif b.key == "gamma_shape" and isinstance(p, GammaPrior):
                prior[_km.PRIOR_SHAPE_SHAPE], prior[_km.PRIOR_SHAPE_RATE] = p.shape, p.rate
            elif not (b.key == "pinv" and isinstance(p, UniformPrior)):
                raise EstimatorError(f"no compiled density for the prior {p!r} of {b.key}")
        fixed = np.zeros(_km.N_FIXED)
        fixed[_km.FIXED_EXCH:_km.FIXED_EXCH + 6] = m.exchangeabilities
        fixed[_km.FIXED_PI:_km.FIXED_PI + 4] = m.frequencies
        fixed[_km.FIXED_SHAPE] = m.gamma_shape
        fixed[_km.FIXED_PINV] = m.pinv
        fixed[_km.FIXED_NCAT] = m.gamma_categories
        fixed[_km.FIXED_KAPPA_MODEL] = 1.0 if m.name in ("K80", "HKY85") else 0.0
        lik = self.likelihood
        return ModelSpec(free, fixed, prior, lik.invariant_basis() if m.has_invariant else None,
                         lik.kernel_model(m)[0].shape[0])

    def model_at(self, u: np.ndarray):
        """The :class:`phylo.models.Model` with unconstrained parameters ``u``."""
        changes: dict[str, Any] = {}
        i = 0
        for b in self._blocks:
            x = b.prior.to_constrained(u[i:i + b.n_free])
            i += b.n_free
            if b.key == "exchangeabilities":
                changes["exchangeabilities"] = x / x[-1]
            elif b.key == "frequencies":
                changes["frequencies"] = x
            else:
                changes[b.key] = float(x[0])
        return self.model.replace(**changes)

    def _lik(self, u: np.ndarray):
        """The likelihood at model parameters u: a view of :attr:`likelihood` with the
        model's kernel arrays built in compiled code (no Model object, no new buffers)."""
        if not self._blocks:
            return self.likelihood
        key = np.asarray(u, dtype=np.float64).tobytes()
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self.likelihood.with_kernel_model(*self.kernel_model(u)))
        return self._cache[1]

    def _model_log_prior(self, u: np.ndarray) -> float:
        """log p(u) (Jacobians included) by the compiled twin of the prior objects
        (:func:`phylo._kernels.densities.model_log_prior`)."""
        if not self._blocks:
            return 0.0
        return float(_dens.model_log_prior(np.ascontiguousarray(u, dtype=np.float64),
                                           self._spec.free, self._spec.prior))

    def _model_log_prior_reference(self, u: np.ndarray) -> float:
        """log p(u) summed over the prior objects (:mod:`phylo.marginal.priors`): the
        reference the compiled :meth:`_model_log_prior` is tested against."""
        lp, i = 0.0, 0
        for b in self._blocks:
            lp += b.prior.log_density_unconstrained(u[i:i + b.n_free])
            i += b.n_free
        return float(lp)

    def _sample_model_prior(self, n: int, rng: np.random.Generator) -> np.ndarray:
        cols = [np.array([b.prior.to_unconstrained(x) for x in b.prior.sample(n, rng=rng)])
                for b in self._blocks]
        return np.hstack(cols) if cols else np.empty((n, 0))

    def parameter_names(self) -> list[str]:
        names = [f"log_t{v}" for v in range(self.n_branches)]
        for b in self._blocks:
            names += [f"u_{b.key}{j}" for j in range(b.n_free)]
        return names

    # -- likelihood hooks ----------------------------------------------------------------
    def initial_point(self) -> np.ndarray:
        bl = np.asarray(self.tree.branch_lengths, dtype=np.float64)
        if not np.all(np.isfinite(bl)):
            bl = np.full(self.n_branches, DEFAULT_START_LENGTH)
        bl = np.where(bl > 1e-4, bl, 1e-3)
        return np.concatenate([np.log(bl), self._model_values()])

    @staticmethod
    def _safe(t: np.ndarray) -> np.ndarray:
        t = np.ascontiguousarray(t, dtype=np.float64)
        if not np.all(np.isfinite(t)):
            t = np.where(np.isfinite(t), t, 1e6)
        return t

    def _log_likelihood(self, t: np.ndarray, u: np.ndarray) -> float:
        return float(self._lik(u).log_likelihood_unchecked(self._safe(t)))

    def _log_likelihood_batch(self, t: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Rows in parallel; with free model parameters each row's model is built in
        compiled code (a row whose parameters the model refuses gets NaN)."""
        t = np.where(np.isfinite(t), t, 1e6)
        if not self._blocks:
            return self.likelihood.log_likelihood_batch(t, parallel=True, check=False)
        models, invs, ok = self.kernel_models(u)
        out = self.likelihood.log_likelihood_batch_models(t, models, invs)
        out[~ok] = np.nan
        return out

    def kernel_models(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(packed models (B, L), +I likelihoods (B, n_blocks × block_size) or one shared
        row of zeros (1, ·) without +I, valid (B,)) at the rows of ``u`` (B, n_model),
        built in compiled code; an invalid row holds the problem's own model."""
        u = np.ascontiguousarray(np.atleast_2d(u), dtype=np.float64)
        sp = self._spec
        models = np.empty((u.shape[0], sp.packed_length))
        has_inv = sp.invariant_basis is not None
        basis = sp.invariant_basis if has_inv else np.zeros((4, 1))
        invs = np.empty((u.shape[0], basis.shape[1])) if has_inv else \
            self.likelihood.no_invariant().reshape(1, -1)
        ok = _km.packed_batch(u, sp.free, sp.fixed, models, basis, invs, has_inv)
        if not ok.all():
            packed, inv = self.likelihood.kernel_model(self.model)
            models[~ok] = packed
            if has_inv:
                invs[~ok] = inv.reshape(-1)
        return models, invs, ok

    def _log_likelihood_batch_cuda(self, t: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The batch in one GPU launch (:mod:`phylo.likelihood.cuda`); with free model
        parameters every row carries its own packed model."""
        from ..likelihood.cuda import CudaLikelihood
        if self._cuda is None:
            self._cuda = CudaLikelihood.for_engine(self.likelihood)
        t = np.where(np.isfinite(t), t, 1e6)
        if not self._blocks or t.shape[0] == 0:
            return self._cuda.log_likelihood_batch(t)
        arrays = [self.likelihood.model_arrays(self.model_at(ui)) for ui in u]
        models = (np.stack([a[0] for a in arrays]), np.stack([a[1] for a in arrays]))
        return self._cuda.log_likelihood_batch(t, models=models)

    def _log_likelihood_gradient(self, t: np.ndarray, u: np.ndarray) -> tuple[float, np.ndarray]:
        return self._lik(u).gradient_unchecked(self._safe(t))

    def _pattern_log_likelihoods(self, t: np.ndarray, u: np.ndarray) -> np.ndarray:
        return self._lik(u).pattern_log_likelihoods_unchecked(self._safe(t))

    def numba_target(self) -> NumbaTarget | None:
        """The compiled pruning kernel (JC-like problems without free model parameters)."""
        if self._blocks:
            return None
        if self._numba_args is None:
            self._numba_args = (np.empty(self.n_branches), _kernel_arguments(self.likelihood))
        return NumbaTarget(_dens.tree_loglik_z, self._numba_args, _dens.exp_prior_z,
                           (float(self.branch_prior.rate), int(self.n_branches)))

    def incremental_target(self) -> tuple:
        """(kernel arguments, branch prior rate) for the incremental Numba MCMC loop
        :func:`phylo._kernels.mcmc.run_chain_tree`; with free model parameters the
        sampler swaps the model's arrays in them (:meth:`kernel_model`). Every call gets
        private buffers."""
        return self.likelihood.kernel_arguments(), float(self.branch_prior.rate)

    def kernel_model(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The model-dependent kernel arrays (packed model, +I pattern likelihoods) at
        unconstrained model parameters ``u`` (n_model,), built in compiled code
        (:func:`phylo._kernels.models.packed_from_unconstrained`; the arrays of
        :meth:`phylo.likelihood.TreeLikelihood.kernel_model` for :meth:`model_at`
        (u), equal to rounding). Raises :class:`~phylo.errors.ModelError` for values
        the model refuses."""
        u = np.ascontiguousarray(u, dtype=np.float64)
        if not self._blocks:
            return self.likelihood.kernel_model(self.model)
        sp = self._spec
        packed = np.empty(sp.packed_length)
        if not _km.packed_from_unconstrained(u, sp.free, sp.fixed, packed):
            raise ModelError(f"model parameters out of range at u = {u.tolist()}")
        if sp.invariant_basis is None:
            return packed, self.likelihood.no_invariant()
        inv = np.empty(sp.invariant_basis.shape[1])
        _km.invariant_likelihoods_into(packed[MODEL_PI:MODEL_PI + 4], sp.invariant_basis, inv)
        return packed, inv.reshape(self.likelihood.no_invariant().shape)

    def model_spec(self) -> "ModelSpec | None":
        """The compiled model builder's arrays (None without free model parameters)."""
        return self._spec

    def prior_table(self) -> list[dict[str, object]]:
        """The priors of this posterior in words (:func:`phylo.marginal.priors.prior_table`)."""
        label = self.model.to_string()
        rows = prior_table({label: self.model}, branch_prior_rate=self.branch_prior.rate)
        return rows if self._blocks else rows[:1]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model": self.model.to_string(),
                "n_taxa": self.alignment.n_taxa, "n_sites": self.alignment.n_sites,
                "topology": self.tree.to_newick(lengths=False)}
