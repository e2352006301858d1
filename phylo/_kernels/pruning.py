"""Felsenstein pruning over site patterns (Felsenstein 1981, J. Mol. Evol. 17:368).

Array layouts (float64 unless noted; S leaves, N nodes, P patterns, C rate categories):

``children``   int32 (N, 3), post-order tree of :mod:`phylo.trees.tree` padded with -1;
               every internal node has 2 children, the root 2 (rooted) or 3 (unrooted).
``parent``     int32 (N,), -1 at the root.
``tipx``       (S, 4, P) tip partials: indicator rows of the states in each mask
               (A=1 C=2 G=4 T=8; 15 = missing = all ones), shared by all categories;
               used only where a tip's partials are needed as rows (the root's general
               path, the gradient's pre-order).
``tipc``       uint8 (S, P) the tips' 4-bit state masks. Where the compile target has
               AVX-512 (``lookup.TIP_LOOKUP``) a tip child contributes
               P x = ``ptab[v, c, :, mask]``, a table lookup (:mod:`.lookup`: one
               permute per row and 8 patterns) instead of 16 multiply-adds on 32 bytes
               of indicator rows (DS1 GTR+Γ4: a tip-tip node 1.6 µs instead of 5, a
               tip-internal node 2.7 instead of 4.3); elsewhere tips use ``tipx``.
``ptab``       (S, C, 4, 16) the tip branches' lookup tables, ptab[v, c, i, m] =
               Σ_{j∈m} P_v,c[i, j] (:func:`tip_table`).
``pm``         (N-1, C, 4, 4) transition matrices of every branch and category,
               ``pm[v, c, i, j] = P_ij(r_c t_v)``.
``partials``   (2, N-S, C, 4, P) conditional likelihoods of internal node ``u`` at row
               ``u-S``, double-buffered: the live copy is ``partials[cur[u-S], u-S]``.
               Structure of arrays (patterns innermost): every loop over patterns is a
               vectorisable stream with the 4×4 matrix entries as loop-invariant
               scalars. The second buffer lets an MCMC proposal recompute the path
               from a changed branch to the root and be rejected by flipping ``cur``
               back (as MrBayes and BEAGLE do).
``cur``        int32 (N-S,) live buffer of each internal node.
``scnt``       int32 (2, N-S, P) power-of-two scale exponents per node and pattern,
               valid only where ``sflag[buffer, row]`` is 1 (a node is rescaled only
               when the maximum of its partials over states and categories falls
               below ``SCALE_THRESHOLD``; rescaling multiplies by an exact power of
               two, so the sum of exponents is exact and independent of order, and an
               incremental update equals a full evaluation bit for bit).
``sbound``     (2, N-S, C) per buffer, a lower bound on min_p max_i of a node's partials
               in each category (:func:`scale_bound`): where it clears the threshold no
               pattern can need rescaling and the per-pattern maxima are not computed
               (on DS1 no node needs them; a 2,000-taxon tree does, near the root).
``model``      packed float64 vector, see :func:`pack_model`.

Models of the F81 family (JC69, F81: P = a I + 1 bᵀ) take a 2-scalar-per-state path:
P·x = a x + (b·x), 8 multiply-adds instead of 16.

The kernels do not allocate in the single-evaluation path: buffers come from the
prepared :class:`phylo.likelihood.TreeLikelihood`.
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import types
from numba.extending import intrinsic

from .lookup import TIP_LOOKUP, lookup1_matvec, lookup1_matvec_f81, lookup1_mul, lookup2

#: Fast-math flags without ``nnan``/``ninf``: an impossible pattern gives log(0) = -inf,
#: which must survive, and the threshold tests must see real infinities.
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}
#: Rescale a node's partials for a pattern when their maximum drops below this
#: (2^-256 ≈ 8.6e-78: two children at the threshold still multiply to ~1e-155,
#: far from the smallest normal double 2.2e-308).
SCALE_THRESHOLD = 2.0 ** -256
LN2 = math.log(2.0)


# --- a vectorisable natural log --------------------------------------------------------
# libm's log is a call, so a loop over patterns that takes logs runs one element at a
# time (this llvmlite has no SVML). fast_log is fdlibm's __ieee754_log (Sun, 1993:
# reduction to m ∈ [√½, √2), s = (m−1)/(m+1), log m = 2 atanh s as a degree-14 minimax
# polynomial in s, |error| < 2^-58.45, and k·ln2 split into hi + lo parts) written
# without branches or calls, with integer bit operations on the float's bits, so that
# LLVM vectorises loops calling it (packed AVX-512/AVX2 ops; checked with inspect_asm).
# Compiled WITHOUT fast-math (the compensated final sum must not be reassociated) and
# with error_model="numpy" (Python's zero-division check would be a branch that
# raises, which stops vectorisation).
@intrinsic
def _f2i(typingctx, x):
    """Bit pattern of a float64 as int64 (no conversion)."""
    if not isinstance(x, types.Float) or x.bitwidth != 64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def _i2f(typingctx, x):
    """float64 with the given int64 bit pattern (no conversion)."""
    if not isinstance(x, types.Integer) or x.bitwidth != 64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
_LN2_HI = 6.93147180369123816490e-01   # 0x3fe62e42fee00000: k·ln2_hi is exact
_LN2_LO = 1.90821492927058770002e-10
_SQRT_HALF_BITS = 0x3FE6A09E667F3BCD
_TINY = 2.2250738585072014e-308        # smallest normal


@njit(cache=True, error_model="numpy")
def fast_log(x):
    """Natural log of a float64, ≤ 1 ulp (fdlibm's algorithm); -inf at 0, NaN below 0
    or at NaN, +inf at +inf; subnormals handled. Branch-free: vectorises in loops."""
    sub = x < _TINY
    xs = x * 18014398509481984.0 if sub else x          # 2^54: subnormals to normals
    i = _f2i(xs)
    j = i - _SQRT_HALF_BITS
    k = j >> 52                                          # arithmetic shift
    m = _i2f(i - (k << 52))                              # m ∈ [√½, √2)
    dk = float(k - 54) if sub else float(k)
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    r = t2 + t1
    # fdlibm's two final forms: with ½f² where the [1, 2) mantissa lies in
    # (1 + 0x6147a/2^20, 1 + 0x6b851/2^20) ≈ (1.38, 1.42), i.e. |f| ≳ 0.29, else without
    hx = (i >> 32) & 0xFFFFF
    hfsq = 0.5 * f * f
    y1 = dk * _LN2_HI - ((hfsq - (s * (hfsq + r) + dk * _LN2_LO)) - f)
    y2 = dk * _LN2_HI - ((s * (f - r) - dk * _LN2_LO) - f)
    y = y1 if ((hx - 0x6147A) | (0x6B851 - hx)) > 0 else y2
    y = -np.inf if x == 0.0 else y
    y = x if x == np.inf else y
    return y if x >= 0.0 else np.nan


@njit(cache=True, error_model="numpy")
def fast_log_array(x, out):
    """out[p] = fast_log(x[p]) for (P,) arrays (may alias): one vectorised loop."""
    for p in range(x.shape[0]):
        out[p] = fast_log(x[p])


_EXP_P1 = 1.66666666666666019037e-01
_EXP_P2 = -2.77777777770155933842e-03
_EXP_P3 = 6.61375632143793436117e-05
_EXP_P4 = -1.65339022054652515390e-06
_EXP_P5 = 4.13813679705723846039e-08
_INV_LN2 = 1.44269504088896338700e+00
_EXP_OVERFLOW = 7.09782712893383973096e+02    # ln(DBL_MAX)
_EXP_UNDERFLOW = -7.45133219101941108420e+02  # ln(2^-1075)


@njit(cache=True, error_model="numpy")
def fast_exp(x):
    """e^x, ≤ 1 ulp (fdlibm's __ieee754_exp: x = k ln2 + r, |r| ≤ ln2/2, a degree-5
    Remez rational for e^r, then 2^k applied so that subnormal results come out
    right); 0 below ln 2^-1075, +inf above ln DBL_MAX, NaN at NaN; e^0 = 1 exactly. Branch-free (selects only), so loops calling it vectorise. Compiled
    without fast-math: the compensated sum must not be reassociated."""
    xc = min(max(x, -746.0), 710.0)
    k = math.floor(xc * _INV_LN2 + 0.5)
    hi = xc - k * _LN2_HI
    lo = k * _LN2_LO
    r = hi - lo
    t = r * r
    c = r - t * (_EXP_P1 + t * (_EXP_P2 + t * (_EXP_P3 + t * (_EXP_P4 + t * _EXP_P5))))
    y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    # y·2^k: add max(k, -1000) to y's exponent bits (exact, stays normal), then one
    # multiply by 2^(k - that) ∈ [2^-75, 1] for subnormal results (one rounding).
    # (Two multiplies by 2^(k/2) are NOT safe: LLVM folds them into one scaling by
    # 2^k, which overflows at k = 1024 and underflows to 0 at k = -1075.)
    ki = int(k)
    kk = max(ki, -1000)
    y = _i2f(_f2i(y) + (kk << 52)) * _i2f((ki - kk + 1023) << 52)
    y = 0.0 if x < _EXP_UNDERFLOW else y
    y = np.inf if x > _EXP_OVERFLOW else y
    return y if x == x else x


@njit(cache=True, error_model="numpy")
def fast_exp_array(x, out):
    """out[p] = fast_exp(x[p]) for (P,) arrays (may alias): one vectorised loop."""
    for p in range(x.shape[0]):
        out[p] = fast_exp(x[p])


#: Offsets in the packed model vector (:func:`pack_model`); with C = model[MODEL_NCAT]
#: categories the per-category rates start at MODEL_RATES, their weights at
#: MODEL_RATES + C and the F81-family flag (1.0: P = a I + 1 bᵀ) at MODEL_RATES + 2C.
#: Kernels index with these names only; :func:`unpack_model` names the parts in Python.
MODEL_NCAT = 0       # C, as a float
MODEL_PINV = 1       # proportion of invariable sites
MODEL_PI = 2         # π (4)
MODEL_LAMBDA = 6     # eigenvalues λ of Q (4)
MODEL_V = 10         # eigenvectors V, row-major (16)
MODEL_VINV = 26      # V⁻¹, row-major (16)
MODEL_Q = 42         # Q, row-major (16)
MODEL_RATES = 58     # category rates r_c (C)


def unpack_model(model: np.ndarray) -> dict:
    """The packed model's parts by name (views): ncat, pinv, pi, lam, v, vinv, q,
    rates, weights, f81 — for callers outside the kernels (a GPU twin, tests)."""
    nc = int(model[MODEL_NCAT])
    return dict(ncat=nc, pinv=float(model[MODEL_PINV]), pi=model[MODEL_PI:MODEL_PI + 4],
                lam=model[MODEL_LAMBDA:MODEL_LAMBDA + 4],
                v=model[MODEL_V:MODEL_V + 16].reshape(4, 4),
                vinv=model[MODEL_VINV:MODEL_VINV + 16].reshape(4, 4),
                q=model[MODEL_Q:MODEL_Q + 16].reshape(4, 4),
                rates=model[MODEL_RATES:MODEL_RATES + nc],
                weights=model[MODEL_RATES + nc:MODEL_RATES + 2 * nc],
                f81=bool(model[MODEL_RATES + 2 * nc] != 0.0))


_OFF_DIAGONAL = ~np.eye(4, dtype=bool)


def pack_model(lam: np.ndarray, v: np.ndarray, vinv: np.ndarray, rates: np.ndarray,
               weights: np.ndarray, pi: np.ndarray, pinv: float, qmat: np.ndarray) -> np.ndarray:
    """Pack a model into one float64 vector (fewer kernel arguments, less dispatch cost).

    Layout: [C, pinv, π(4), λ(4), V(16), V⁻¹(16), Q(16), rates(C), weights(C), f81]
    where f81 = 1 when Q_ij = μ π_j for all i ≠ j (JC69/F81: P = a I + 1 bᵀ)."""
    c = rates.shape[0]
    q = np.asarray(qmat, dtype=np.float64)
    pi = np.asarray(pi, dtype=np.float64)
    ratio = (q / pi[None, :])[_OFF_DIAGONAL]
    # |r - r_0| <= 1e-12 |r_0| for every off-diagonal ratio (np.allclose's test, cheaper:
    # samplers pack a model at every model-parameter move)
    f81 = bool(np.all(pi > 0) and np.all(np.abs(ratio - ratio[0]) <= 1e-12 * abs(ratio[0])))
    out = np.concatenate([[float(c), float(pinv)], pi, lam, v.ravel(), vinv.ravel(),
                          q.ravel(), rates, weights, [1.0 if f81 else 0.0]]).astype(np.float64)
    assert out.shape[0] == MODEL_RATES + 2 * c + 1
    return out


@njit(cache=True, error_model="numpy")
def _matrices_from_exp(b, c, rt, e0, e1, e2, e3, model, pm, dpm, want_derivative):
    """P = V diag(e) V⁻¹ (and dP/dt = V diag(λ r e) V⁻¹) of branch b, category c, from
    e_k = exp(λ_k r_c t). Tiny negative round-off entries of P are clamped to 0.
    Compiled without fast-math (and not inlined at Numba level, which would impose the
    caller's flags): the single-branch update and the all-branch pass must produce the
    same bits however LLVM vectorises each of them."""
    lam = model[MODEL_LAMBDA:MODEL_LAMBDA + 4]
    v = model[MODEL_V:MODEL_V + 16]
    vinv = model[MODEL_VINV:MODEL_VINV + 16]
    r = model[MODEL_RATES + c]
    if rt == 0.0:
        # exactly the identity (the eigen route leaves ~1e-17 off the diagonal,
        # which would make impossible data merely improbable)
        for i in range(4):
            for j in range(4):
                pm[b, c, i, j] = 1.0 if i == j else 0.0
                if want_derivative:
                    dpm[b, c, i, j] = model[MODEL_Q + 4 * i + j] * r
        return
    for i in range(4):
        a0 = v[4 * i] * e0
        a1 = v[4 * i + 1] * e1
        a2 = v[4 * i + 2] * e2
        a3 = v[4 * i + 3] * e3
        for j in range(4):
            x = a0 * vinv[j] + a1 * vinv[4 + j] + a2 * vinv[8 + j] + a3 * vinv[12 + j]
            pm[b, c, i, j] = x if x > 0.0 else 0.0
        if want_derivative:
            d0 = a0 * lam[0] * r
            d1 = a1 * lam[1] * r
            d2 = a2 * lam[2] * r
            d3 = a3 * lam[3] * r
            for j in range(4):
                dpm[b, c, i, j] = (d0 * vinv[j] + d1 * vinv[4 + j] + d2 * vinv[8 + j]
                                   + d3 * vinv[12 + j])


@njit(cache=True, fastmath=FASTMATH)
def branch_matrices(b, t, model, pm, dpm, want_derivative):
    """P(r_c t) (and dP/dt if ``want_derivative``) of branch b for every category c
    (the same exponentials, :func:`fast_exp`, as :func:`transition_matrices`)."""
    nc = int(model[MODEL_NCAT])
    lam = model[MODEL_LAMBDA:MODEL_LAMBDA + 4]
    for c in range(nc):
        rt = model[MODEL_RATES + c] * t
        _matrices_from_exp(b, c, rt, fast_exp(lam[0] * rt), fast_exp(lam[1] * rt),
                           fast_exp(lam[2] * rt), fast_exp(lam[3] * rt), model, pm, dpm,
                           want_derivative)


@njit(cache=True, fastmath=FASTMATH)
def transition_matrices(bl, model, pm, dpm, want_derivative):
    """P (and dP/dt) for all branches; pm, dpm: (n_branches, C, 4, 4), C-contiguous.

    The exponentials e_k = exp(λ_k r_c t_b) are taken first, in one vectorised loop
    over a contiguous run, using pm itself as scratch: block m = b C + c keeps its 4
    exponentials at flat[4m : 4m+4]. Matrices are then filled from the last block
    down: writing block m (flat[16m : 16m+16]) overwrites only exponentials of blocks
    4m..4m+3 ≥ m, which are already done (block m's own are read first)."""
    nc = int(model[MODEL_NCAT])
    nb = bl.shape[0]
    flat = pm.reshape(pm.size)
    for b in range(nb):
        t = bl[b]
        for c in range(nc):
            rt = model[MODEL_RATES + c] * t
            m = 4 * (b * nc + c)
            flat[m] = model[MODEL_LAMBDA] * rt
            flat[m + 1] = model[MODEL_LAMBDA + 1] * rt
            flat[m + 2] = model[MODEL_LAMBDA + 2] * rt
            flat[m + 3] = model[MODEL_LAMBDA + 3] * rt
    ne = 4 * nb * nc
    for k in range(ne):
        flat[k] = fast_exp(flat[k])
    for m in range(nb * nc - 1, -1, -1):
        b = m // nc
        c = m - b * nc
        _matrices_from_exp(b, c, model[MODEL_RATES + c] * bl[b], flat[4 * m], flat[4 * m + 1],
                           flat[4 * m + 2], flat[4 * m + 3], model, pm, dpm, want_derivative)


@njit(cache=True, fastmath=FASTMATH)
def tip_table(b, nc, pm, ptab):
    """ptab[b, c, i, m] = Σ_{j ∈ m} P_b,c[i, j] for the 16 state masks m (bit j = state
    j): P_b x for a tip with mask m, looked up instead of multiplied
    (:mod:`phylo._kernels.lookup`). Nothing to do without lookups (``TIP_LOOKUP``)."""
    if not TIP_LOOKUP:
        return
    for c in range(nc):
        for i in range(4):
            p0 = pm[b, c, i, 0]
            p1 = pm[b, c, i, 1]
            p2 = pm[b, c, i, 2]
            p3 = pm[b, c, i, 3]
            t = ptab[b, c, i]
            p01 = p0 + p1
            p23 = p2 + p3
            t[0] = 0.0
            t[1] = p0
            t[2] = p1
            t[3] = p01
            t[4] = p2
            t[5] = p0 + p2
            t[6] = p1 + p2
            t[7] = p01 + p2
            t[8] = p3
            t[9] = p0 + p3
            t[10] = p1 + p3
            t[11] = p01 + p3
            t[12] = p23
            t[13] = p0 + p23
            t[14] = p1 + p23
            t[15] = p01 + p23


@njit(cache=True, fastmath=FASTMATH)
def tip_tables(model, pm, ptab):
    """:func:`tip_table` of every tip branch (ptab: (S, C, 4, 16))."""
    if not TIP_LOOKUP:
        return
    nc = int(model[MODEL_NCAT])
    for b in range(ptab.shape[0]):
        tip_table(b, nc, pm, ptab)


# --- one internal node ----------------------------------------------------------------
# The per-node helpers (except the general 4x4 `_int_int`, whose loops stop
# vectorising when inlined: GTR+G4 on DS1 went from 170 to 490 us) and root_and_finish are
# inlined at Numba IR level (inline="always"): per-call overhead (argument unpacking, array
# views) dominated a single-branch MCMC proposal (primates: 3.37 -> 2.75 us per generation,
# bit-identical). Inline only into callers compiled with the same FASTMATH flags
# (propose_branch and revert_branch, called from the non-fastmath MCMC loop, stay separate
# functions: inlining them was slower and changed the last bits). A conditional load in the
# pattern loops (e.g. `0.0 if first else mx[p]`) stops vectorisation (1.6x slower): keep
# them branch-free. The node loops do not track the per-pattern maximum for rescaling: a
# cheap lower bound decides whether a node can need rescaling at all (see
# :func:`node_partials`), and only then a separate pass looks at the maxima.
@njit(cache=True, fastmath=FASTMATH)
def _int_int(out, xa, pa, xb, pb):
    """out (4, P) = (P_a x_a) ∘ (P_b x_b), general 4x4 matrices."""
    a00 = pa[0, 0]; a01 = pa[0, 1]; a02 = pa[0, 2]; a03 = pa[0, 3]
    a10 = pa[1, 0]; a11 = pa[1, 1]; a12 = pa[1, 2]; a13 = pa[1, 3]
    a20 = pa[2, 0]; a21 = pa[2, 1]; a22 = pa[2, 2]; a23 = pa[2, 3]
    a30 = pa[3, 0]; a31 = pa[3, 1]; a32 = pa[3, 2]; a33 = pa[3, 3]
    b00 = pb[0, 0]; b01 = pb[0, 1]; b02 = pb[0, 2]; b03 = pb[0, 3]
    b10 = pb[1, 0]; b11 = pb[1, 1]; b12 = pb[1, 2]; b13 = pb[1, 3]
    b20 = pb[2, 0]; b21 = pb[2, 1]; b22 = pb[2, 2]; b23 = pb[2, 3]
    b30 = pb[3, 0]; b31 = pb[3, 1]; b32 = pb[3, 2]; b33 = pb[3, 3]
    n = out.shape[1]
    for p in range(n):
        x0 = xa[0, p]
        x1 = xa[1, p]
        x2 = xa[2, p]
        x3 = xa[3, p]
        y0 = xb[0, p]
        y1 = xb[1, p]
        y2 = xb[2, p]
        y3 = xb[3, p]
        out[0, p] = (a00 * x0 + a01 * x1 + a02 * x2 + a03 * x3) * (b00 * y0 + b01 * y1 + b02 * y2 + b03 * y3)
        out[1, p] = (a10 * x0 + a11 * x1 + a12 * x2 + a13 * x3) * (b10 * y0 + b11 * y1 + b12 * y2 + b13 * y3)
        out[2, p] = (a20 * x0 + a21 * x1 + a22 * x2 + a23 * x3) * (b20 * y0 + b21 * y1 + b22 * y2 + b23 * y3)
        out[3, p] = (a30 * x0 + a31 * x1 + a32 * x2 + a33 * x3) * (b30 * y0 + b31 * y1 + b32 * y2 + b33 * y3)


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _int_int_f81(out, xa, pa, xb, pb):
    """out = (P_a x_a) ∘ (P_b x_b) for P = a I + 1 qᵀ (F81 family): P x = a x + q·x."""
    qa0 = pa[1, 0]; qa1 = pa[2, 1]; qa2 = pa[3, 2]; qa3 = pa[0, 3]
    aa = pa[0, 0] - qa0
    qb0 = pb[1, 0]; qb1 = pb[2, 1]; qb2 = pb[3, 2]; qb3 = pb[0, 3]
    ab = pb[0, 0] - qb0
    n = out.shape[1]
    for p in range(n):
        x0 = xa[0, p]
        x1 = xa[1, p]
        x2 = xa[2, p]
        x3 = xa[3, p]
        y0 = xb[0, p]
        y1 = xb[1, p]
        y2 = xb[2, p]
        y3 = xb[3, p]
        sa = qa0 * x0 + qa1 * x1 + qa2 * x2 + qa3 * x3
        sb = qb0 * y0 + qb1 * y1 + qb2 * y2 + qb3 * y3
        out[0, p] = (aa * x0 + sa) * (ab * y0 + sb)
        out[1, p] = (aa * x1 + sa) * (ab * y1 + sb)
        out[2, p] = (aa * x2 + sa) * (ab * y2 + sb)
        out[3, p] = (aa * x3 + sa) * (ab * y3 + sb)


@njit(cache=True, fastmath=FASTMATH, inline="always")
def rows(v, c, s, tipx, partials, cur):
    """The live (4, P) partials of node v in category c (tips: indicator rows)."""
    if v < s:
        return tipx[v]
    return partials[cur[v - s], v - s, c]


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _min_diag_all(pv):
    """(min_i P_ii, min_ij P_ij) of a 4x4 matrix."""
    md = min(min(pv[0, 0], pv[1, 1]), min(pv[2, 2], pv[3, 3]))
    ma = md
    for i in range(4):
        for j in range(4):
            ma = min(ma, pv[i, j])
    return md, ma


@njit(cache=True, fastmath=FASTMATH, inline="always")
def scale_bound(pa, pb, lba, lbb):
    """A lower bound on min_p max_i z_ip for z = (P_a x_a) ∘ (P_b x_b), given lower
    bounds lba, lbb on min_p max_j of x_a and x_b.

    If x_a peaks at state j (value M_a) and x_b at k, then (P_a x_a)_i ≥ P_a[i,j] M_a,
    so max_i z_i ≥ M_a M_b max_i P_a[i,j] P_b[i,k] ≥ M_a M_b κ with
    κ = max(min_i P_a[i,i] · min P_b, min P_a · min_i P_b[i,i]) (take i = j or i = k)."""
    mda, maa = _min_diag_all(pa)
    mdb, mab = _min_diag_all(pb)
    return lba * lbb * max(mda * mab, maa * mdb)


@njit(cache=True, fastmath=FASTMATH, inline="always")
def pair_product(out, a, b, c, f81, tipx, tipc, pm, ptab, partials, cur):
    """out (4, P) = (P_a x_a) ∘ (P_b x_b) in category c; if one child is a tip it must
    be ``a`` (tips by table lookup where ``TIP_LOOKUP``, else by their indicator rows;
    internal nodes from their live partials)."""
    s = tipc.shape[0]
    if not TIP_LOOKUP:
        xa = rows(a, c, s, tipx, partials, cur)
        xb = rows(b, c, s, tipx, partials, cur)
        if f81:
            _int_int_f81(out, xa, pm[a, c], xb, pm[b, c])
        else:
            _int_int(out, xa, pm[a, c], xb, pm[b, c])
    elif b < s:
        lookup2(out, ptab[a, c], tipc[a], ptab[b, c], tipc[b])
    elif a < s:
        xb = partials[cur[b - s], b - s, c]
        if f81:
            lookup1_matvec_f81(out, ptab[a, c], tipc[a], xb, pm[b, c])
        else:
            lookup1_matvec(out, ptab[a, c], tipc[a], xb, pm[b, c])
    else:
        xa = partials[cur[a - s], a - s, c]
        xb = partials[cur[b - s], b - s, c]
        if f81:
            _int_int_f81(out, xa, pm[a, c], xb, pm[b, c])
        else:
            _int_int(out, xa, pm[a, c], xb, pm[b, c])


@njit(cache=True, fastmath=FASTMATH, inline="always")
def node_partials(u, dst, children, tipx, tipc, model, pm, ptab, partials, cur, scnt, sflag,
                  sbound, mx):
    """Partials of internal node u (not the root) into buffer ``dst`` from its two
    children's live partials (tips by table lookup), then rescaling if needed.
    ``mx`` (P,) is scratch.

    Rescaling (multiplying a pattern by 2^-e when its maximum over states and categories
    falls below ``SCALE_THRESHOLD``) is decided from ``sbound[dst, u-S, c]``, a lower
    bound on min_p max_i of the node's partials in category c (1 at tips, see
    :func:`scale_bound`; exact after a rescaling pass): only when the best bound is
    below 2·threshold are the maxima computed and patterns rescaled. Where the bound
    clears it no pattern can need rescaling, so the result is identical to testing
    every pattern — it only skips a pass that would change nothing."""
    s = tipc.shape[0]
    nc = int(model[MODEL_NCAT])
    f81 = model[MODEL_RATES + 2 * nc] != 0.0
    a = children[u, 0]
    b = children[u, 1]
    if a >= s and b < s:
        a, b = b, a                      # a tip child first (products commute)
    r = u - s
    best = 0.0
    for c in range(nc):
        pair_product(partials[dst, r, c], a, b, c, f81, tipx, tipc, pm, ptab, partials, cur)
        lba = 1.0 if a < s else sbound[cur[a - s], a - s, c]
        lbb = 1.0 if b < s else sbound[cur[b - s], b - s, c]
        lb = scale_bound(pm[a, c], pm[b, c], lba, lbb)
        sbound[dst, r, c] = lb
        best = max(best, lb)
    if best >= 2.0 * SCALE_THRESHOLD:
        sflag[dst, r] = 0
    else:
        rescale_node(r, dst, nc, partials, mx, scnt, sflag, sbound)


@njit(cache=True, fastmath=FASTMATH)
def rescale_node(r, dst, nc, partials, mx, scnt, sflag, sbound):
    """The rare path of :func:`node_partials`: per-pattern maxima, :func:`rescale`, and
    the exact bounds sbound[dst, r, c] = min_p max_i of the rescaled partials."""
    npat = mx.shape[0]
    for p in range(npat):
        mx[p] = 0.0
    for c in range(nc):
        x = partials[dst, r, c]
        for p in range(npat):
            m = mx[p]
            m = x[0, p] if x[0, p] > m else m
            m = x[1, p] if x[1, p] > m else m
            m = x[2, p] if x[2, p] > m else m
            m = x[3, p] if x[3, p] > m else m
            mx[p] = m
    rescale(r, dst, nc, partials, mx, scnt, sflag)
    for c in range(nc):
        x = partials[dst, r, c]
        lb = np.inf
        for p in range(npat):
            m = max(max(x[0, p], x[1, p]), max(x[2, p], x[3, p]))
            lb = min(lb, m)
        sbound[dst, r, c] = lb


@njit(cache=True, fastmath=FASTMATH, inline="always")
def rescale(r, dst, nc, partials, mx, scnt, sflag):
    """Where max mx[p] < SCALE_THRESHOLD, multiply pattern p of node row r (buffer
    dst) by an exact power of two 2^-e (e = frexp exponent of the max) and record e."""
    npat = mx.shape[0]
    need = 0
    for p in range(npat):
        if mx[p] < SCALE_THRESHOLD:
            need += 1
    if need == 0:
        sflag[dst, r] = 0
        return
    sflag[dst, r] = 1
    cnt = scnt[dst, r]
    for p in range(npat):
        m = mx[p]
        if m < SCALE_THRESHOLD and m > 0.0:
            f, e = math.frexp(m)
            fac = math.ldexp(1.0, -e)
            for c in range(nc):
                for i in range(4):
                    partials[dst, r, c, i, p] *= fac
            cnt[p] = e
        else:
            cnt[p] = 0


@njit(cache=True, fastmath=FASTMATH)
def matvec(out, x, pv):
    """out (4, P) = P_v x for a general 4x4 matrix pv and partials x (4, P)."""
    m00 = pv[0, 0]; m01 = pv[0, 1]; m02 = pv[0, 2]; m03 = pv[0, 3]
    m10 = pv[1, 0]; m11 = pv[1, 1]; m12 = pv[1, 2]; m13 = pv[1, 3]
    m20 = pv[2, 0]; m21 = pv[2, 1]; m22 = pv[2, 2]; m23 = pv[2, 3]
    m30 = pv[3, 0]; m31 = pv[3, 1]; m32 = pv[3, 2]; m33 = pv[3, 3]
    for p in range(out.shape[1]):
        x0 = x[0, p]
        x1 = x[1, p]
        x2 = x[2, p]
        x3 = x[3, p]
        out[0, p] = m00 * x0 + m01 * x1 + m02 * x2 + m03 * x3
        out[1, p] = m10 * x0 + m11 * x1 + m12 * x2 + m13 * x3
        out[2, p] = m20 * x0 + m21 * x1 + m22 * x2 + m23 * x3
        out[3, p] = m30 * x0 + m31 * x1 + m32 * x2 + m33 * x3


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _root_f81(lnl, first, three, w, pi0, pi1, pi2, pi3, xa, pa, xb, pb, xc, pc):
    """lnl[p] (= if first, else +=) w Σ_i π_i Π_k (P_k x_k)_i over the root's 2 or 3
    children (F81 family: P x = a x + (q·x)), in one pass; products in child order."""
    qa0 = pa[1, 0]; qa1 = pa[2, 1]; qa2 = pa[3, 2]; qa3 = pa[0, 3]
    aa = pa[0, 0] - qa0
    qb0 = pb[1, 0]; qb1 = pb[2, 1]; qb2 = pb[3, 2]; qb3 = pb[0, 3]
    ab = pb[0, 0] - qb0
    qc0 = pc[1, 0]; qc1 = pc[2, 1]; qc2 = pc[3, 2]; qc3 = pc[0, 3]
    ac = pc[0, 0] - qc0
    n = lnl.shape[0]
    if three:
        for p in range(n):
            x0 = xa[0, p]; x1 = xa[1, p]; x2 = xa[2, p]; x3 = xa[3, p]
            y0 = xb[0, p]; y1 = xb[1, p]; y2 = xb[2, p]; y3 = xb[3, p]
            v0 = xc[0, p]; v1 = xc[1, p]; v2 = xc[2, p]; v3 = xc[3, p]
            sa = qa0 * x0 + qa1 * x1 + qa2 * x2 + qa3 * x3
            sb = qb0 * y0 + qb1 * y1 + qb2 * y2 + qb3 * y3
            sc = qc0 * v0 + qc1 * v1 + qc2 * v2 + qc3 * v3
            z0 = (aa * x0 + sa) * (ab * y0 + sb) * (ac * v0 + sc)
            z1 = (aa * x1 + sa) * (ab * y1 + sb) * (ac * v1 + sc)
            z2 = (aa * x2 + sa) * (ab * y2 + sb) * (ac * v2 + sc)
            z3 = (aa * x3 + sa) * (ab * y3 + sb) * (ac * v3 + sc)
            t = w * (pi0 * z0 + pi1 * z1 + pi2 * z2 + pi3 * z3)
            lnl[p] = t if first else lnl[p] + t
    else:
        for p in range(n):
            x0 = xa[0, p]; x1 = xa[1, p]; x2 = xa[2, p]; x3 = xa[3, p]
            y0 = xb[0, p]; y1 = xb[1, p]; y2 = xb[2, p]; y3 = xb[3, p]
            sa = qa0 * x0 + qa1 * x1 + qa2 * x2 + qa3 * x3
            sb = qb0 * y0 + qb1 * y1 + qb2 * y2 + qb3 * y3
            z0 = (aa * x0 + sa) * (ab * y0 + sb)
            z1 = (aa * x1 + sa) * (ab * y1 + sb)
            z2 = (aa * x2 + sa) * (ab * y2 + sb)
            z3 = (aa * x3 + sa) * (ab * y3 + sb)
            t = w * (pi0 * z0 + pi1 * z1 + pi2 * z2 + pi3 * z3)
            lnl[p] = t if first else lnl[p] + t


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _root_sum(lnl, w, pi0, pi1, pi2, pi3, acc):
    """lnl[p] += w π·acc[:, p]."""
    for p in range(lnl.shape[0]):
        lnl[p] += w * (pi0 * acc[0, p] + pi1 * acc[1, p] + pi2 * acc[2, p] + pi3 * acc[3, p])


@njit(cache=True, fastmath=FASTMATH)
def _root_last(lnl, w, pi0, pi1, pi2, pi3, acc, x, pv):
    """lnl[p] += w Σ_i π_i acc[i, p] (P_v x)[i, p]: the root's last (internal) child
    folded into the π-weighted sum."""
    m00 = pv[0, 0]; m01 = pv[0, 1]; m02 = pv[0, 2]; m03 = pv[0, 3]
    m10 = pv[1, 0]; m11 = pv[1, 1]; m12 = pv[1, 2]; m13 = pv[1, 3]
    m20 = pv[2, 0]; m21 = pv[2, 1]; m22 = pv[2, 2]; m23 = pv[2, 3]
    m30 = pv[3, 0]; m31 = pv[3, 1]; m32 = pv[3, 2]; m33 = pv[3, 3]
    for p in range(lnl.shape[0]):
        x0 = x[0, p]
        x1 = x[1, p]
        x2 = x[2, p]
        x3 = x[3, p]
        h0 = m00 * x0 + m01 * x1 + m02 * x2 + m03 * x3
        h1 = m10 * x0 + m11 * x1 + m12 * x2 + m13 * x3
        h2 = m20 * x0 + m21 * x1 + m22 * x2 + m23 * x3
        h3 = m30 * x0 + m31 * x1 + m32 * x2 + m33 * x3
        lnl[p] += w * (pi0 * acc[0, p] * h0 + pi1 * acc[1, p] * h1 + pi2 * acc[2, p] * h2
                       + pi3 * acc[3, p] * h3)


@njit(cache=True, fastmath=FASTMATH, inline="always")
def root_and_finish(children, n_children, tipx, tipc, model, pattern_weights, inv_lik, pm,
                    ptab, partials, cur, scnt, sflag, lnl, frac_var, acc, escale):
    """Root integration and the per-pattern logs: fills ``lnl`` (P,) with ln L_p and
    ``frac_var`` with L_var/L_p; returns Σ_p w_p ln L_p. acc (4, P) scratch, escale
    int32 (P,) scratch."""
    s = tipx.shape[0]
    nc = int(model[MODEL_NCAT])
    npat = lnl.shape[0]
    root = children.shape[0] - 1
    pi0 = model[MODEL_PI]
    pi1 = model[MODEL_PI + 1]
    pi2 = model[MODEL_PI + 2]
    pi3 = model[MODEL_PI + 3]
    if not (model[MODEL_RATES + 2 * nc] != 0.0 and (n_children[root] == 2 or n_children[root] == 3)):
        for p in range(npat):
            lnl[p] = 0.0
    f81 = model[MODEL_RATES + 2 * nc] != 0.0
    nk = n_children[root]
    for c in range(nc):
        w = model[MODEL_RATES + nc + c]
        if f81 and (nk == 2 or nk == 3):
            # one fused pass: children's contributions, their product, π · and w
            a = children[root, 0]
            b = children[root, 1]
            e = children[root, 2] if nk == 3 else a
            _root_f81(lnl, c == 0, nk == 3, w, pi0, pi1, pi2, pi3,
                      rows(a, c, s, tipx, partials, cur), pm[a, c],
                      rows(b, c, s, tipx, partials, cur), pm[b, c],
                      rows(e, c, s, tipx, partials, cur), pm[e, c])
            continue
        if nk == 1:
            v = children[root, 0]
            matvec(acc, rows(v, c, s, tipx, partials, cur), pm[v, c])
            _root_sum(lnl, w, pi0, pi1, pi2, pi3, acc)
            continue
        # the product of the first two children (tips first), then the third child
        # (if any) and the π-weighted sum in one more pass
        a = children[root, 0]
        b = children[root, 1]
        e = children[root, 2] if nk == 3 else -1
        if e >= 0 and e < s and not (a < s and b < s):
            if a >= s:
                a, e = e, a
            else:
                b, e = e, b
        if a >= s and b < s:
            a, b = b, a
        pair_product(acc, a, b, c, False, tipx, tipc, pm, ptab, partials, cur)
        if e < 0:
            _root_sum(lnl, w, pi0, pi1, pi2, pi3, acc)
        elif e < s and TIP_LOOKUP:
            lookup1_mul(acc, ptab[e, c], tipc[e])
            _root_sum(lnl, w, pi0, pi1, pi2, pi3, acc)
        elif e < s:
            _root_last(lnl, w, pi0, pi1, pi2, pi3, acc, tipx[e], pm[e, c])
        else:
            _root_last(lnl, w, pi0, pi1, pi2, pi3, acc, partials[cur[e - s], e - s, c], pm[e, c])
    # total scale exponent per pattern: integer sums, exact in any order
    any_scaled = False
    for r in range(root - s):
        if sflag[cur[r], r] != 0:
            if not any_scaled:
                for p in range(npat):
                    escale[p] = 0
                any_scaled = True
            cnt = scnt[cur[r], r]
            for p in range(npat):
                escale[p] += cnt[p]
    pinv = model[MODEL_PINV]
    total = 0.0
    if pinv > 0.0:
        log_pinv = math.log(pinv)
        for p in range(npat):
            lv = lnl[p]
            x = fast_log(lv) if lv > 0.0 else -np.inf
            if any_scaled:
                x += escale[p] * LN2
            if inv_lik[p] > 0.0:
                y = log_pinv + math.log(inv_lik[p])
                m = max(x, y)
                ll = m + math.log(math.exp(x - m) + math.exp(y - m))
                frac_var[p] = math.exp(x - ll)
            else:
                ll = x
                frac_var[p] = 1.0
            lnl[p] = ll
            total += pattern_weights[p] * ll
        return total
    # no +I: one vectorised loop (fast_log inlines; the weighted sum is a reduction)
    if any_scaled:
        for p in range(npat):
            ll = fast_log(lnl[p]) + escale[p] * LN2
            lnl[p] = ll
            frac_var[p] = 1.0
            total += pattern_weights[p] * ll
    else:
        for p in range(npat):
            ll = fast_log(lnl[p])
            lnl[p] = ll
            frac_var[p] = 1.0
            total += pattern_weights[p] * ll
    return total


@njit(cache=True, fastmath=FASTMATH)
def postorder_all(children, tipx, tipc, model, pm, ptab, partials, cur, scnt, sflag, sbound,
                  mx, flip):
    """Partials of every internal node except the root, children first. With ``flip``
    every node is written to its other buffer and ``cur`` is flipped (a proposal that
    changes all branches; :func:`revert_all` undoes it)."""
    s = tipc.shape[0]
    n = children.shape[0]
    for u in range(s, n - 1):
        r = u - s
        dst = 1 - cur[r] if flip else cur[r]
        node_partials(u, dst, children, tipx, tipc, model, pm, ptab, partials, cur, scnt,
                      sflag, sbound, mx)
        cur[r] = dst


@njit(cache=True, fastmath=FASTMATH)
def log_likelihood(bl, children, n_children, tipx, tipc, model, pattern_weights, inv_lik,
                   pm, ptab, partials, cur, scnt, sflag, sbound, lnl, frac_var, acc, escale):
    """ln L = Σ_p w_p ln L_p for branch lengths ``bl`` (N-1,); fills ``lnl`` (P,).
    Returns NaN (and computes nothing) if any branch length is negative or not finite.
    Evaluates into the live buffers ``cur``."""
    for b in range(bl.shape[0]):
        # invalid lengths (negative, NaN, inf) return NaN: the caller validates only
        # then, which keeps the common path free of NumPy checks
        if not (bl[b] >= 0.0 and bl[b] < np.inf):
            return np.nan
    transition_matrices(bl, model, pm, pm, False)
    tip_tables(model, pm, ptab)
    # frac_var is free until root_and_finish fills it: the rescaling scratch
    postorder_all(children, tipx, tipc, model, pm, ptab, partials, cur, scnt, sflag, sbound,
                  frac_var, False)
    return root_and_finish(children, n_children, tipx, tipc, model, pattern_weights, inv_lik,
                           pm, ptab, partials, cur, scnt, sflag, lnl, frac_var, acc, escale)


#: Arguments of :func:`log_likelihood` after ``bl``.
N_LOGLIK_ARGS = 18


# --- incremental updates (MCMC) ---------------------------------------------------------
@njit(cache=True, fastmath=FASTMATH)
def propose_branch(j, t, children, n_children, parent, tipx, tipc, model, pattern_weights,
                   inv_lik, pm, ptab, partials, cur, scnt, sflag, sbound, lnl, frac_var, acc,
                   escale, pm_save, path):
    """ln L after changing branch j to length t, recomputing only P_j (and its tip table)
    and the partials on the path from j to the root, each into its node's other buffer.
    The old P_j goes to pm_save (C, 4, 4), the path to ``path`` (int32, N) with its
    length in path[N-1]. Call :func:`revert_branch` to reject; accepting needs nothing."""
    s = tipc.shape[0]
    nc = int(model[MODEL_NCAT])
    n = children.shape[0]
    for c in range(nc):
        for i in range(4):
            for k in range(4):
                pm_save[c, i, k] = pm[j, c, i, k]
    branch_matrices(j, t, model, pm, pm, False)
    if j < s:
        tip_table(j, nc, pm, ptab)
    k = 0
    u = parent[j]
    while u != n - 1:
        r = u - s
        dst = 1 - cur[r]
        node_partials(u, dst, children, tipx, tipc, model, pm, ptab, partials, cur, scnt,
                      sflag, sbound, frac_var)
        cur[r] = dst
        path[k] = u
        k += 1
        u = parent[u]
    path[n - 1] = k
    return root_and_finish(children, n_children, tipx, tipc, model, pattern_weights, inv_lik,
                           pm, ptab, partials, cur, scnt, sflag, lnl, frac_var, acc, escale)


@njit(cache=True, fastmath=FASTMATH)
def revert_branch(j, s, model, pm, ptab, cur, pm_save, path):
    """Undo :func:`propose_branch` (S = s leaves; lnl/frac_var are left stale)."""
    nc = int(model[MODEL_NCAT])
    for c in range(nc):
        for i in range(4):
            for k in range(4):
                pm[j, c, i, k] = pm_save[c, i, k]
    if j < s:
        tip_table(j, nc, pm, ptab)
    n = path.shape[0]
    for k in range(path[n - 1]):
        r = path[k] - s
        cur[r] = 1 - cur[r]


@njit(cache=True, fastmath=FASTMATH)
def propose_all(bl, children, n_children, tipx, tipc, model, pattern_weights, inv_lik,
                pm, ptab, partials, cur, scnt, sflag, sbound, lnl, frac_var, acc, escale,
                pm_all_save):
    """ln L at new lengths ``bl`` for every branch, into the other buffers (see
    :func:`revert_all`)."""
    pm_all_save[:] = pm
    transition_matrices(bl, model, pm, pm, False)
    tip_tables(model, pm, ptab)
    postorder_all(children, tipx, tipc, model, pm, ptab, partials, cur, scnt, sflag, sbound,
                  frac_var, True)
    return root_and_finish(children, n_children, tipx, tipc, model, pattern_weights, inv_lik,
                           pm, ptab, partials, cur, scnt, sflag, lnl, frac_var, acc, escale)


@njit(cache=True, fastmath=FASTMATH)
def revert_all(model, pm, ptab, cur, pm_all_save):
    pm[:] = pm_all_save
    tip_tables(model, pm, ptab)
    for r in range(cur.shape[0]):
        cur[r] = 1 - cur[r]


# --- batches ------------------------------------------------------------------------------
@njit(cache=True, fastmath=FASTMATH, parallel=True)
def log_likelihood_batch_models(bls, children, n_children, tipx, tipc, models,
                                pattern_weights, invs, n_chunks, out):
    """ln L for every row of ``bls`` (B, N-1) into ``out`` (B,), row r under the packed
    model ``models[r]`` with +I likelihoods ``invs[r]`` (P',) — or, when ``models`` /
    ``invs`` have one row, under that one for all rows — in parallel over ``n_chunks``
    chunks of rows (numba prange); each chunk allocates its own buffers. All models
    must have the same number of rate categories. Each value has the bits of
    :func:`log_likelihood` under its model."""
    nb = bls.shape[0]
    s = tipc.shape[0]
    npat = tipc.shape[1]
    nc = int(models[0, MODEL_NCAT])
    n = children.shape[0]
    one_model = models.shape[0] == 1
    one_inv = invs.shape[0] == 1
    for k in prange(n_chunks):
        lo = (nb * k) // n_chunks
        hi = (nb * (k + 1)) // n_chunks
        pm = np.empty((n - 1, nc, 4, 4))
        ptab = np.empty((s, nc, 4, 16))
        partials = np.empty((1, n - s, nc, 4, npat))
        cur = np.zeros(n - s, dtype=np.int32)
        scnt = np.empty((1, n - s, npat), dtype=np.int32)
        sflag = np.zeros((1, n - s), dtype=np.int32)
        sbound = np.zeros((1, n - s, nc))
        lnl = np.empty(npat)
        frac = np.empty(npat)
        acc = np.empty((4, npat))
        escale = np.empty(npat, dtype=np.int32)
        for r in range(lo, hi):
            out[r] = log_likelihood(bls[r], children, n_children, tipx, tipc,
                                    models[0] if one_model else models[r], pattern_weights,
                                    invs[0] if one_inv else invs[r], pm, ptab, partials, cur,
                                    scnt, sflag, sbound, lnl, frac, acc, escale)


@njit(cache=True, fastmath=FASTMATH)
def log_likelihood_batch(bls, children, n_children, tipx, tipc, model, pattern_weights,
                         inv_lik, n_chunks, out):
    """ln L for every row of ``bls`` (B, N-1) into ``out`` (B,) under one model, in
    parallel over ``n_chunks`` chunks of rows (:func:`log_likelihood_batch_models`)."""
    log_likelihood_batch_models(bls, children, n_children, tipx, tipc,
                                model.reshape((1, model.shape[0])), pattern_weights,
                                inv_lik.reshape((1, inv_lik.shape[0])), n_chunks, out)
