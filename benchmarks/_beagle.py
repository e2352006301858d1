"""A small ctypes binding to BEAGLE 3.x, used as an independent peer for the likelihood.

BEAGLE (Ayres et al. 2012, 2019; https://github.com/beagle-dev/beagle-lib) is the
library that BEAST, MrBayes and others use to evaluate phylogenetic likelihoods.
This module is our own code, written from the documented C API in
``libhmsbeagle-1/libhmsbeagle/beagle.h`` (version 3.1.2, Debian package
``libhmsbeagle-dev``). It is *not* part of the ``phylo`` package: benchmarks and the
agreement test (``tests/test_beagle_peer.py``) use it to check and time ``phylo``
against BEAGLE in the same process.

Importing this module never fails; :func:`available` tells whether the shared
library could be loaded, and everything that needs it raises
:class:`BeagleUnavailableError` (with the install command) when it is missing.
Set ``PHYLO_BEAGLE_LIB`` to the path of ``libhmsbeagle.so`` to use a specific build.

How a :class:`phylo.trees.Tree` is mapped onto BEAGLE buffers
--------------------------------------------------------------
* Leaves ``0..S-1`` (taxon order of the alignment) are BEAGLE tips ``0..S-1``, either
  compact tip states (A,C,G,T -> 0..3, gap/missing mask 15 -> 4 = "missing") or tip
  partials (the indicator vector of the 4-bit mask, so IUPAC ambiguity codes work). In
  ``tip_mode="states"`` a taxon that carries an ambiguity code (a mask that is neither
  a single base nor 15) is given tip partials instead; :attr:`BeagleLikelihood.n_partial_tips`
  counts them.
* Internal node ``v`` (post-order, root ``N-1``) owns partials buffer ``v``; branch
  ``v`` (above node ``v``) owns transition matrix ``v`` (and first-derivative matrix
  ``N-1+v`` when gradients are requested).
* BEAGLE operations are binary (two children with their matrices -> one parent).
  A rooted tree's bifurcating root is one more operation followed by
  ``beagleCalculateRootLogLikelihoods``. The trifurcating root ``r`` of an unrooted
  tree with children ``a, b, c`` is handled in one of two documented ways:

  - ``root_mode="edge"`` (default, the cheaper one): buffer ``r`` receives the
    combination of ``a`` and ``b`` only, and the log-likelihood is taken across the
    third child's branch with ``beagleCalculateEdgeLogLikelihoods(parent=r, child=c,
    matrix=P_c)``, i.e. ``sum_i pi_i r_i sum_j P_c[i,j] c_j`` per pattern -- the
    same value as at the root because the model is reversible and stationary;
  - ``root_mode="identity"``: ``a`` and ``b`` are combined into an extra buffer
    ``T = N``, then ``r = op(T, I, c, P_c)`` with an identity matrix ``I`` set once
    with ``beagleSetTransitionMatrix``, then ``beagleCalculateRootLogLikelihoods(r)``.

  Both give the same number (the test checks it); the benchmark uses ``"edge"``.
* Scaling: ``scaling="none"`` (no rescaling; fine for tens of taxa in double
  precision), ``"manual"`` (``BEAGLE_FLAG_SCALING_MANUAL``: every operation writes its
  own scale buffer, accumulated by ``beagleUpdatePartials`` into a cumulative buffer
  that is reset each evaluation and passed to the root/edge integration -- what BEAST
  does when it rescales), or ``"always"`` (BEAGLE's deprecated ``SCALING_ALWAYS``,
  offered only to compare). ``BEAGLE_FLAG_SCALING_AUTO`` is refused: beagle.h marks it
  "deprecated, may not work correctly", and with 3.1.2 it returned wrong,
  run-to-run different values on the primates reference (off by 10^2-10^4 log units).

Gradient (BEAGLE 3.1.2 has no pre-order/gradient API; that came with 4.0)
--------------------------------------------------------------------------
:meth:`BeagleLikelihood.gradient` builds the classic two-pass gradient out of 3.1.2
calls: the post-order pass above; a pre-order pass of ``beagleUpdatePartials``
operations computing, for each non-root node ``v`` with parent ``p`` and sibling
``s``, the "upper" partial ``U_v = op(U_p, P_p, L_s, P_s)`` (at the root, the product
of the other children's ``P L``; valid as a child-operation because a reversible
stationary chain has ``P(state above | state below) = P``); and, per branch,
``beagleCalculateEdgeLogLikelihoods(parent=U_v, child=L_v, P_v, dP_v/dt)``, whose
``outSumFirstDerivative`` is ``sum_k w_k L'_k / L_k = d lnL / d t_v``. Per-pattern
scale factors cancel in that ratio, so no scale bookkeeping is needed for it.

Model input
-----------
A model is given as arrays: eigenvalues ``lam`` (4,), right eigenvectors ``V`` (4,4)
and ``V^-1`` (4,4) with ``Q = V diag(lam) V^-1`` (row-major, BEAGLE's
``INVEVEC_STANDARD``), stationary frequencies (4,), category rates (K,) and category
weights (K,). :func:`model_arrays` builds them from a ``phylo.models.Model``-like
object or from a GTR specification (:func:`gtr_eigen`).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = [
    "BeagleError", "BeagleUnavailableError", "BeagleLikelihood", "available", "version",
    "resources", "load", "gtr_eigen", "model_arrays", "ModelArrays", "beagle_log_likelihood",
    "FLAGS",
]

INSTALL_HINT = "apt-get install -y libhmsbeagle-dev   (Debian/Ubuntu package, BEAGLE 3.1.2)"

#: enum BeagleFlags from beagle.h
FLAGS = {
    "PRECISION_SINGLE": 1 << 0, "PRECISION_DOUBLE": 1 << 1,
    "COMPUTATION_SYNCH": 1 << 2, "COMPUTATION_ASYNCH": 1 << 3,
    "EIGEN_REAL": 1 << 4, "EIGEN_COMPLEX": 1 << 5,
    "SCALING_MANUAL": 1 << 6, "SCALING_AUTO": 1 << 7, "SCALING_ALWAYS": 1 << 8,
    "SCALING_DYNAMIC": 1 << 25, "SCALERS_RAW": 1 << 9, "SCALERS_LOG": 1 << 10,
    "INVEVEC_STANDARD": 1 << 20, "INVEVEC_TRANSPOSED": 1 << 21,
    "VECTOR_SSE": 1 << 11, "VECTOR_AVX": 1 << 24, "VECTOR_NONE": 1 << 12,
    "THREADING_CPP": 1 << 30, "THREADING_OPENMP": 1 << 13, "THREADING_NONE": 1 << 14,
    "PROCESSOR_CPU": 1 << 15, "PROCESSOR_GPU": 1 << 16, "PROCESSOR_FPGA": 1 << 17,
    "PROCESSOR_CELL": 1 << 18, "PROCESSOR_PHI": 1 << 19, "PROCESSOR_OTHER": 1 << 26,
    "FRAMEWORK_CUDA": 1 << 22, "FRAMEWORK_OPENCL": 1 << 23, "FRAMEWORK_CPU": 1 << 27,
    "PARALLELOPS_STREAMS": 1 << 28, "PARALLELOPS_GRID": 1 << 29,
}
OP_NONE = -1

#: enum BeagleReturnCodes
_RETURN_CODES = {
    0: "BEAGLE_SUCCESS", -1: "BEAGLE_ERROR_GENERAL", -2: "BEAGLE_ERROR_OUT_OF_MEMORY",
    -3: "BEAGLE_ERROR_UNIDENTIFIED_EXCEPTION", -4: "BEAGLE_ERROR_UNINITIALIZED_INSTANCE",
    -5: "BEAGLE_ERROR_OUT_OF_RANGE", -6: "BEAGLE_ERROR_NO_RESOURCE",
    -7: "BEAGLE_ERROR_NO_IMPLEMENTATION", -8: "BEAGLE_ERROR_FLOATING_POINT",
}


class BeagleError(RuntimeError):
    """A BEAGLE call returned an error code."""


class BeagleUnavailableError(BeagleError):
    """libhmsbeagle could not be loaded."""


# --- C structures (beagle.h) ------------------------------------------------------
class _InstanceDetails(ctypes.Structure):
    _fields_ = [("resourceNumber", ctypes.c_int), ("resourceName", ctypes.c_char_p),
                ("implName", ctypes.c_char_p), ("implDescription", ctypes.c_char_p),
                ("flags", ctypes.c_long)]


class _Resource(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("description", ctypes.c_char_p),
                ("supportFlags", ctypes.c_long), ("requiredFlags", ctypes.c_long)]


class _ResourceList(ctypes.Structure):
    _fields_ = [("list", ctypes.POINTER(_Resource)), ("length", ctypes.c_int)]


_I = ctypes.c_int
_L = ctypes.c_long
_D = ctypes.c_double
_IP = ctypes.POINTER(ctypes.c_int)
_DP = ctypes.POINTER(ctypes.c_double)

_SIGNATURES = {
    "beagleGetVersion": ([], ctypes.c_char_p),
    "beagleGetResourceList": ([], ctypes.POINTER(_ResourceList)),
    "beagleCreateInstance": ([_I, _I, _I, _I, _I, _I, _I, _I, _I, _IP, _I, _L, _L,
                              ctypes.POINTER(_InstanceDetails)], _I),
    "beagleFinalizeInstance": ([_I], _I),
    "beagleSetCPUThreadCount": ([_I, _I], _I),
    "beagleSetTipStates": ([_I, _I, _IP], _I),
    "beagleSetTipPartials": ([_I, _I, _DP], _I),
    "beagleSetPartials": ([_I, _I, _DP], _I),
    "beagleSetEigenDecomposition": ([_I, _I, _DP, _DP, _DP], _I),
    "beagleSetStateFrequencies": ([_I, _I, _DP], _I),
    "beagleSetCategoryWeights": ([_I, _I, _DP], _I),
    "beagleSetCategoryRates": ([_I, _DP], _I),
    "beagleSetPatternWeights": ([_I, _DP], _I),
    "beagleSetTransitionMatrix": ([_I, _I, _DP, _D], _I),
    "beagleGetTransitionMatrix": ([_I, _I, _DP], _I),
    "beagleUpdateTransitionMatrices": ([_I, _I, _IP, _IP, _IP, _DP, _I], _I),
    "beagleUpdatePartials": ([_I, _IP, _I, _I], _I),
    "beagleResetScaleFactors": ([_I, _I], _I),
    "beagleAccumulateScaleFactors": ([_I, _IP, _I, _I], _I),
    "beagleCalculateRootLogLikelihoods": ([_I, _IP, _IP, _IP, _IP, _I, _DP], _I),
    "beagleCalculateEdgeLogLikelihoods": ([_I, _IP, _IP, _IP, _IP, _IP, _IP, _IP, _IP, _I,
                                           _DP, _DP, _DP], _I),
    "beagleGetSiteLogLikelihoods": ([_I, _DP], _I),
}

_LIB = None
_LOAD_ERROR: str | None = None


def _candidate_paths() -> list[str]:
    paths = []
    env = os.environ.get("PHYLO_BEAGLE_LIB")
    if env:
        paths.append(env)
    found = ctypes.util.find_library("hmsbeagle")
    if found:
        paths.append(found)
    paths += ["libhmsbeagle.so.1", "libhmsbeagle.so",
              "/usr/lib/x86_64-linux-gnu/libhmsbeagle.so.1", "/usr/local/lib/libhmsbeagle.so"]
    return paths


def load():
    """Load libhmsbeagle (once) and return the ``ctypes.CDLL``; raise if unavailable."""
    global _LIB, _LOAD_ERROR
    if _LIB is not None:
        return _LIB
    if _LOAD_ERROR is not None:
        raise BeagleUnavailableError(_LOAD_ERROR)
    try:
        _LIB = _load_from(_candidate_paths())
    except BeagleUnavailableError as exc:
        _LOAD_ERROR = str(exc)
        raise
    return _LIB


def _load_from(paths: Sequence[str]):
    """Try each path; return the CDLL with signatures set, or raise BeagleUnavailableError."""
    errors = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
            for name, (args, res) in _SIGNATURES.items():
                fn = getattr(lib, name)
                fn.argtypes = args
                fn.restype = res
        except (OSError, AttributeError) as exc:
            errors.append(f"{path}: {exc}")
            continue
        return lib
    raise BeagleUnavailableError(
        "BEAGLE (libhmsbeagle) is not installed or could not be loaded; install it with "
        f"`{INSTALL_HINT}` or set PHYLO_BEAGLE_LIB ({'; '.join(errors[:3])})")


def available() -> bool:
    """True when libhmsbeagle can be loaded."""
    try:
        load()
    except BeagleUnavailableError:
        return False
    return True


def version() -> str:
    """BEAGLE's version string (``beagleGetVersion``)."""
    return load().beagleGetVersion().decode()


def decode_flags(flags: int) -> list[str]:
    """Names of the set bits of a BEAGLE flag word."""
    return [name for name, bit in FLAGS.items() if flags & bit]


def resources() -> list[dict]:
    """BEAGLE's resource list (``beagleGetResourceList``): name, description, flags."""
    rl = load().beagleGetResourceList()
    out = []
    for i in range(rl.contents.length):
        r = rl.contents.list[i]
        out.append({"number": i, "name": (r.name or b"").decode(),
                    "description": (r.description or b"").decode().strip(),
                    "support_flags": decode_flags(r.supportFlags),
                    "required_flags": decode_flags(r.requiredFlags)})
    return out


def _check(code: int, what: str) -> int:
    if code < 0:
        raise BeagleError(f"{what} failed: {_RETURN_CODES.get(code, code)}")
    return code


# --- models ------------------------------------------------------------------------
def gtr_eigen(exchangeabilities: Sequence[float], frequencies: Sequence[float]):
    """Eigen-decomposition of a GTR rate matrix normalised to mean rate 1.

    ``exchangeabilities``: (AC, AG, AT, CG, CT, GT); ``Q_ij = r_ij pi_j``. Returns
    ``(eigenvalues (4,), V (4,4), V^-1 (4,4))`` with ``Q = V diag(eigenvalues) V^-1``,
    computed through the symmetric matrix ``D^1/2 Q D^-1/2`` (``numpy.linalg.eigh``).
    """
    r = np.asarray(exchangeabilities, dtype=np.float64)
    pi = np.asarray(frequencies, dtype=np.float64)
    pi = pi / pi.sum()
    s = np.zeros((4, 4))
    iu = np.triu_indices(4, 1)  # (0,1) (0,2) (0,3) (1,2) (1,3) (2,3) = AC AG AT CG CT GT
    s[iu] = r
    s = s + s.T
    q = s * pi[None, :]
    np.fill_diagonal(q, -q.sum(axis=1))
    q /= -np.dot(pi, np.diag(q))
    sq = np.sqrt(pi)
    sym = sq[:, None] * q / sq[None, :]
    sym = 0.5 * (sym + sym.T)
    lam, u = np.linalg.eigh(sym)
    v = u / sq[:, None]
    vinv = u.T * sq[None, :]
    return lam, v, vinv


@dataclass(frozen=True)
class ModelArrays:
    """What BEAGLE needs from a substitution model (see module docstring)."""
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    inverse_eigenvectors: np.ndarray
    frequencies: np.ndarray
    category_rates: np.ndarray
    category_weights: np.ndarray


def model_arrays(model=None, *, exchangeabilities=None, frequencies=None,
                 category_rates=(1.0,), category_weights=None) -> ModelArrays:
    """Build :class:`ModelArrays`.

    Either from a ``phylo.models.Model``-like object (``.eigen()`` returning
    ``(eigenvalues, V, V^-1)``, ``.frequencies``, ``.category_rates()``,
    ``.category_weights()``; a ``pinv > 0`` adds a rate-0 category of weight ``pinv``),
    or from a GTR specification (``exchangeabilities``
    default all ones = JC69/F81, ``frequencies`` default uniform) and categories.
    """
    if model is not None:
        eig = model.eigen()
        lam, v, vinv = (eig.eigenvalues, eig.eigenvectors, eig.inverse_eigenvectors) \
            if hasattr(eig, "eigenvalues") else eig
        freqs = model.frequencies() if callable(getattr(model, "frequencies", None)) \
            else model.frequencies
        rates = model.category_rates() if callable(model.category_rates) else model.category_rates
        weights = model.category_weights() if callable(model.category_weights) \
            else model.category_weights
        rates, weights = np.asarray(rates, float), np.asarray(weights, float)
        pinv = float(getattr(model, "pinv", 0.0) or 0.0)
        if pinv > 0.0:  # +I: one more category, rate 0 and weight pinv (P(0) = I)
            rates, weights = np.append(rates, 0.0), np.append(weights, pinv)
    else:
        freqs = np.full(4, 0.25) if frequencies is None else np.asarray(frequencies, float)
        freqs = freqs / freqs.sum()
        ex = np.ones(6) if exchangeabilities is None else exchangeabilities
        lam, v, vinv = gtr_eigen(ex, freqs)
        rates = np.asarray(category_rates, float)
        weights = (np.full(rates.size, 1.0 / rates.size) if category_weights is None
                   else np.asarray(category_weights, float))
    f = lambda x: np.ascontiguousarray(np.asarray(x, dtype=np.float64))  # noqa: E731
    return ModelArrays(f(lam), f(v), f(vinv), f(freqs), f(rates), f(weights))


# --- the likelihood instance ----------------------------------------------------------
_MASK_TO_STATE = np.full(16, -1, dtype=np.int32)
_MASK_TO_STATE[[1, 2, 4, 8, 15]] = [0, 1, 2, 3, 4]

_VECTOR = {"sse": "VECTOR_SSE", "none": "VECTOR_NONE", "avx": "VECTOR_AVX", "any": None}
_SCALING = {"none": 0, "manual": FLAGS["SCALING_MANUAL"], "always": FLAGS["SCALING_ALWAYS"]}


def _ptr(a: np.ndarray, kind):
    return a.ctypes.data_as(kind)


class BeagleLikelihood:
    """A BEAGLE instance prepared once for (alignment, topology, model).

    Call :meth:`log_likelihood` with new branch-length vectors (Tree layout, shape
    ``(n_nodes-1,)``, expected substitutions per site); each call runs
    ``beagleUpdateTransitionMatrices`` (all branches), ``beagleUpdatePartials`` (all
    internal nodes) and the root/edge integration -- the "new branch lengths every
    call" protocol of the benchmark. Natural log, summed over sites with pattern weights.

    Parameters
    ----------
    alignment: ``phylo.io.alignment.Alignment``; its taxa order defines tips 0..S-1.
    tree: ``phylo.trees.Tree`` (rooted binary or unrooted with a trifurcating root);
        leaves are re-ordered to the alignment's taxa.
    model: :class:`ModelArrays` (see :func:`model_arrays`).
    tip_mode: ``"states"`` (compact tip states) or ``"partials"``.
    scaling: ``"none"``, ``"manual"``, ``"always"`` (module docstring; not ``"auto"``).
    vector: ``"sse"`` / ``"none"`` / ``"avx"`` -- required as BEAGLE_FLAG_VECTOR_*;
        ``"any"`` lets BEAGLE choose.
    threads: 1 requires BEAGLE_FLAG_THREADING_NONE; ``n > 1`` asks for
        BEAGLE_FLAG_THREADING_CPP and ``beagleSetCPUThreadCount(n)``.
    root_mode: ``"edge"`` or ``"identity"`` for a trifurcating root (module docstring).
    gradient: allocate derivative matrices and upper-partial buffers for :meth:`gradient`.
    """

    def __init__(self, alignment, tree, model: ModelArrays, *, tip_mode: str = "states",
                 scaling: str = "none", vector: str = "sse", threads: int = 1,
                 root_mode: str = "edge", gradient: bool = False, resource: int = 0):
        lib = load()
        self._lib = lib
        self._instance = -1
        if tip_mode not in ("states", "partials"):
            raise ValueError(f"tip_mode must be 'states' or 'partials', not {tip_mode!r}")
        if scaling == "auto":
            raise ValueError("scaling='auto' (BEAGLE_FLAG_SCALING_AUTO) is deprecated in beagle.h "
                             "and gives wrong values with BEAGLE 3.1.2; use 'manual'")
        if scaling not in _SCALING:
            raise ValueError(f"scaling must be one of {sorted(_SCALING)}, not {scaling!r}")
        if vector not in _VECTOR:
            raise ValueError(f"vector must be one of {sorted(_VECTOR)}, not {vector!r}")
        if root_mode not in ("edge", "identity"):
            raise ValueError(f"root_mode must be 'edge' or 'identity', not {root_mode!r}")
        tree = tree.with_taxa_order(alignment.taxa)
        s, n = tree.n_leaves, tree.n_nodes
        root = n - 1
        nc = tree.n_children
        if np.any(nc[s:root] != 2) or nc[root] not in (2, 3):
            raise ValueError("BeagleLikelihood needs a binary tree (root with 2 or 3 children)")
        self.tree = tree
        self.n_leaves, self.n_nodes, self.n_branches = s, n, n - 1
        self.tip_mode, self.scaling, self.vector, self.root_mode = tip_mode, scaling, vector, root_mode
        self.threads = int(threads)
        p = alignment.n_patterns
        k = int(model.category_rates.size)
        self.n_patterns, self.n_categories = p, k
        self._grad = bool(gradient)
        kids = tree.children

        # buffer plan
        trifurcating = nc[root] == 3
        extra_t = n                                   # temp buffer for root_mode="identity"
        ones_buf = n + 1                              # all-ones partials (rooted gradient)
        up0 = n + 2                                   # upper partials U_v = up0 + v
        n_partials = up0 + (n - 1 if gradient else 0)
        self._dmat0 = n - 1                           # dP_v at dmat0 + v
        ident = 2 * (n - 1)                           # identity matrix
        n_matrices = ident + 1
        self._ident = ident

        # operations (post-order)
        ops: list[list[int]] = []
        for v in range(s, root):
            c1, c2 = kids[v, 0], kids[v, 1]
            ops.append([v, 0, 0, c1, c1, c2, c2])
        a, b = kids[root, 0], kids[root, 1]
        self._edge_child = -1
        if not trifurcating:
            ops.append([root, 0, 0, a, a, b, b])
        else:
            c = kids[root, 2]
            if root_mode == "edge":
                ops.append([root, 0, 0, a, a, b, b])
                self._edge_child = int(c)
            else:
                ops.append([extra_t, 0, 0, a, a, b, b])
                ops.append([root, 0, 0, extra_t, ident, c, c])
        n_ops = len(ops)
        scale_on = scaling in ("manual",)
        for i, op in enumerate(ops):
            op[1] = i if scale_on else OP_NONE     # destinationScaleWrite
            op[2] = OP_NONE                        # destinationScaleRead
        self._cum = n_ops if scale_on else OP_NONE
        n_scale = n_ops + 1 if scaling != "none" else 0
        if scaling == "always":
            n_scale = max(n_scale, n_partials + 1)

        # pre-order "upper" operations for the gradient
        up_ops: list[list[int]] = []
        if gradient:
            order = sorted(range(root), reverse=True)  # parents before children
            for v in order:
                par = tree.parent[v]
                sibs = [int(x) for x in kids[par, :nc[par]] if x != v]
                if par == root:
                    if len(sibs) == 2:
                        up_ops.append([up0 + v, OP_NONE, OP_NONE, sibs[0], sibs[0], sibs[1], sibs[1]])
                    else:
                        up_ops.append([up0 + v, OP_NONE, OP_NONE, sibs[0], sibs[0], ones_buf, ident])
                else:
                    sib = sibs[0]
                    up_ops.append([up0 + v, OP_NONE, OP_NONE, up0 + par, par, sib, sib])
        self._up0 = up0

        # flags
        pref = FLAGS["PRECISION_DOUBLE"] | FLAGS["PROCESSOR_CPU"] | FLAGS["EIGEN_REAL"]
        req = FLAGS["PRECISION_DOUBLE"] | FLAGS["PROCESSOR_CPU"] | FLAGS["FRAMEWORK_CPU"]
        if _VECTOR[vector]:
            req |= FLAGS[_VECTOR[vector]]
        if self.threads == 1:
            req |= FLAGS["THREADING_NONE"]
        else:
            req |= FLAGS["THREADING_CPP"]
        req |= _SCALING[scaling]
        if scaling in ("manual", "always"):
            pref |= FLAGS["SCALERS_LOG"]
        details = _InstanceDetails()
        res = np.array([resource], dtype=np.int32)
        compact = s if tip_mode == "states" else 0
        inst = lib.beagleCreateInstance(s, n_partials, compact, 4, p, 1, n_matrices, k, n_scale,
                                        _ptr(res, _IP), 1, pref, req, ctypes.byref(details))
        _check(inst, "beagleCreateInstance (flags " + "|".join(decode_flags(req)) + ")")
        self._instance = inst
        self.implementation = (details.implName or b"").decode()
        self.implementation_description = (details.implDescription or b"").decode()
        self.resource_name = (details.resourceName or b"").decode()
        self.flags = decode_flags(details.flags)
        if self.threads > 1:
            _check(lib.beagleSetCPUThreadCount(inst, self.threads), "beagleSetCPUThreadCount")

        # tips
        patterns = np.asarray(alignment.patterns)
        self.n_partial_tips = 0
        bits = np.array([1, 2, 4, 8], dtype=np.uint8)
        for t in range(s):
            states = _MASK_TO_STATE[patterns[t]]
            if tip_mode == "states" and np.all(states >= 0):
                st = np.ascontiguousarray(states, dtype=np.int32)
                _check(lib.beagleSetTipStates(inst, t, _ptr(st, _IP)), "beagleSetTipStates")
            else:
                part = np.ascontiguousarray(((patterns[t][:, None] & bits) != 0).astype(np.float64))
                _check(lib.beagleSetTipPartials(inst, t, _ptr(part, _DP)), "beagleSetTipPartials")
                self.n_partial_tips += tip_mode == "states"
        if gradient and nc[root] == 2:
            ones = np.ones(p * 4 * k)
            _check(lib.beagleSetPartials(inst, ones_buf, _ptr(ones, _DP)), "beagleSetPartials")

        # model
        self.model = model
        _check(lib.beagleSetPatternWeights(inst, _ptr(np.ascontiguousarray(alignment.weights,
                                                                            dtype=np.float64), _DP)),
               "beagleSetPatternWeights")
        _check(lib.beagleSetStateFrequencies(inst, 0, _ptr(model.frequencies, _DP)),
               "beagleSetStateFrequencies")
        _check(lib.beagleSetEigenDecomposition(inst, 0, _ptr(model.eigenvectors, _DP),
                                               _ptr(model.inverse_eigenvectors, _DP),
                                               _ptr(model.eigenvalues, _DP)),
               "beagleSetEigenDecomposition")
        _check(lib.beagleSetCategoryRates(inst, _ptr(model.category_rates, _DP)),
               "beagleSetCategoryRates")
        _check(lib.beagleSetCategoryWeights(inst, 0, _ptr(model.category_weights, _DP)),
               "beagleSetCategoryWeights")
        eye = np.ascontiguousarray(np.tile(np.eye(4).ravel(), k))
        _check(lib.beagleSetTransitionMatrix(inst, ident, _ptr(eye, _DP), 1.0),
               "beagleSetTransitionMatrix")

        # pre-built argument arrays (so that an evaluation is a handful of C calls)
        self._ops = np.ascontiguousarray(np.array(ops, dtype=np.int32).ravel())
        self._n_ops = n_ops
        self._up_ops = np.ascontiguousarray(np.array(up_ops, dtype=np.int32).ravel())
        self._n_up_ops = len(up_ops)
        self._mat_idx = np.arange(n - 1, dtype=np.int32)
        self._dmat_idx = self._mat_idx + np.int32(self._dmat0)
        self._bl = np.zeros(n - 1)
        self._zero = np.zeros(1, dtype=np.int32)
        self._root_buf = np.array([root], dtype=np.int32)
        self._cum_arr = np.array([self._cum], dtype=np.int32)
        self._edge_parent = np.array([root], dtype=np.int32)
        self._edge_child_arr = np.array([max(self._edge_child, 0)], dtype=np.int32)
        self._out = np.zeros(3)
        self._p_ops = _ptr(self._ops, _IP)
        self._p_up_ops = _ptr(self._up_ops, _IP)
        self._p_mat = _ptr(self._mat_idx, _IP)
        self._p_dmat = _ptr(self._dmat_idx, _IP)
        self._p_bl = _ptr(self._bl, _DP)
        self._p_zero = _ptr(self._zero, _IP)
        self._p_root = _ptr(self._root_buf, _IP)
        self._p_cum = _ptr(self._cum_arr, _IP)
        self._p_edge_parent = _ptr(self._edge_parent, _IP)
        self._p_edge_child = _ptr(self._edge_child_arr, _IP)
        self._p_out = _ptr(self._out, _DP)
        self._p_out1 = ctypes.cast(self._out.ctypes.data + 8, _DP)
        self._p_out2 = ctypes.cast(self._out.ctypes.data + 16, _DP)
        self._null = ctypes.cast(None, _IP)
        self._dnull = ctypes.cast(None, _DP)

    # -- evaluation ----------------------------------------------------------------------
    def _set_lengths(self, branch_lengths) -> None:
        if branch_lengths is None:
            branch_lengths = self.tree.branch_lengths
        bl = np.asarray(branch_lengths, dtype=np.float64)
        if bl.shape != (self.n_branches,):
            raise ValueError(f"expected {self.n_branches} branch lengths, got shape {bl.shape}")
        self._bl[:] = bl

    def log_likelihood(self, branch_lengths=None) -> float:
        """Log-likelihood (natural log) for branch lengths of shape (n_branches,)."""
        self._set_lengths(branch_lengths)
        return self._evaluate(False)

    def _evaluate(self, derivatives: bool) -> float:
        lib, inst = self._lib, self._instance
        _check(lib.beagleUpdateTransitionMatrices(
            inst, 0, self._p_mat, self._p_dmat if derivatives else self._null, self._null,
            self._p_bl, self.n_branches), "beagleUpdateTransitionMatrices")
        if self._cum >= 0:
            _check(lib.beagleResetScaleFactors(inst, self._cum), "beagleResetScaleFactors")
        _check(lib.beagleUpdatePartials(inst, self._p_ops, self._n_ops, self._cum),
               "beagleUpdatePartials")
        if self._edge_child >= 0:
            _check(lib.beagleCalculateEdgeLogLikelihoods(
                inst, self._p_edge_parent, self._p_edge_child, self._p_edge_child, self._null,
                self._null, self._p_zero, self._p_zero, self._p_cum, 1, self._p_out,
                self._dnull, self._dnull),
                "beagleCalculateEdgeLogLikelihoods")
        else:
            _check(lib.beagleCalculateRootLogLikelihoods(
                inst, self._p_root, self._p_zero, self._p_zero, self._p_cum, 1, self._p_out),
                "beagleCalculateRootLogLikelihoods")
        return float(self._out[0])

    def log_likelihood_many(self, branch_lengths: np.ndarray) -> np.ndarray:
        """Evaluate each row of ``branch_lengths`` (B, n_branches); returns (B,)."""
        bls = np.asarray(branch_lengths, dtype=np.float64)
        out = np.empty(bls.shape[0])
        for i in range(bls.shape[0]):
            self._bl[:] = bls[i]
            out[i] = self._evaluate(False)
        return out

    def site_log_likelihoods(self, branch_lengths=None) -> np.ndarray:
        """Per-pattern log-likelihoods (n_patterns,) of the last integration."""
        self.log_likelihood(branch_lengths)
        out = np.zeros(self.n_patterns)
        _check(self._lib.beagleGetSiteLogLikelihoods(self._instance, _ptr(out, _DP)),
               "beagleGetSiteLogLikelihoods")
        return out

    def gradient(self, branch_lengths=None):
        """``(lnL, d lnL / d t)``: the derivative for every branch, shape (n_branches,).

        Built from BEAGLE 3.1.2 calls (module docstring): post-order partials,
        pre-order upper partials, then one ``beagleCalculateEdgeLogLikelihoods`` with a
        first-derivative matrix per branch.
        """
        if not self._grad:
            raise BeagleError("create the instance with gradient=True to call gradient()")
        self._set_lengths(branch_lengths)
        lnl = self._evaluate(True)
        lib, inst = self._lib, self._instance
        _check(lib.beagleUpdatePartials(inst, self._p_up_ops, self._n_up_ops, OP_NONE),
               "beagleUpdatePartials (pre-order)")
        grad = np.empty(self.n_branches)
        par = np.zeros(1, dtype=np.int32)
        child = np.zeros(1, dtype=np.int32)
        dmat = np.zeros(1, dtype=np.int32)
        none = np.array([OP_NONE], dtype=np.int32)
        out = np.zeros(2)
        pp, pc, pd, pn = _ptr(par, _IP), _ptr(child, _IP), _ptr(dmat, _IP), _ptr(none, _IP)
        po0 = _ptr(out, _DP)
        po1 = ctypes.cast(out.ctypes.data + 8, _DP)
        for v in range(self.n_branches):
            par[0] = self._up0 + v
            child[0] = v
            dmat[0] = self._dmat0 + v
            _check(lib.beagleCalculateEdgeLogLikelihoods(
                inst, pp, pc, pc, pd, self._null, self._p_zero, self._p_zero, pn, 1,
                po0, po1, self._dnull), "beagleCalculateEdgeLogLikelihoods (gradient)")
            grad[v] = out[1]
        return lnl, grad

    # -- lifetime ------------------------------------------------------------------------
    def close(self) -> None:
        """Release the BEAGLE instance (``beagleFinalizeInstance``)."""
        if self._instance >= 0:
            self._lib.beagleFinalizeInstance(self._instance)
            self._instance = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def describe(self) -> dict:
        """Implementation, resource and options, for reports."""
        return {"implementation": self.implementation, "resource": self.resource_name,
                "flags": self.flags, "tip_mode": self.tip_mode, "scaling": self.scaling,
                "vector": self.vector, "threads": self.threads, "root_mode": self.root_mode,
                "n_partial_tips": self.n_partial_tips}


def beagle_log_likelihood(alignment, tree, model: ModelArrays, **options) -> tuple[float, str]:
    """One-shot: ``(lnL, implementation name)`` for ``tree.branch_lengths``."""
    with BeagleLikelihood(alignment, tree, model, **options) as bl:
        return bl.log_likelihood(), bl.implementation
