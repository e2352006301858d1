"""Gradient of ln L with respect to every branch length in O(S) (Ji et al. 2020).

Ji X., Zhang Z., Holbrook A., Nishimura A., Baele G., Rambaut A., Lemey P.,
Suchard M.A. (2020) "Gradients do grow on trees: a linear-time O(N)-dimensional
gradient for statistical phylogenetics", Mol. Biol. Evol. 37:3047-3060.

The post-order pass (:mod:`phylo._kernels.pruning`) leaves the partials x_u of every
internal node; a pre-order pass then computes, for every internal node u, the
pre-order partial ``pre[u, c, i, p]`` ∝ Pr(data outside the subtree of u, state i at
u) (at the bottom of branch u; π at the root). For a branch v below u with siblings s,
Q_v = pre_u ∘ Π_s H_s with H_s = P_s x_s, and

    dL_p/dt_v = Σ_c w_c Q_v,c · (dP_v,c/dt x_v,c),   L_p = Σ_c w_c Q_v,c · H_v,c,
    pre_v = P_vᵀ Q_v.

Both are computed at the same (arbitrary) scale, so their ratio is exact whatever
rescaling was applied; no scale logarithms are needed in the pre-order pass. With +I,
d ln L_p/dt = (dL_var/dt / L_var) · (L_var / L_p), the second factor from the root.

Two paths:

* **Fast path** (:func:`preorder_fast`; taken when no node was rescaled and every
  pattern has L_var ≥ 2^-600, e.g. DS1–DS11): the post-order is exactly the
  likelihood's (:func:`phylo._kernels.pruning.log_likelihood`, tips by table lookup);
  then q_v·H_v = L_var,p for every branch, so one vector R_p = w_p / L_p replaces the
  per-branch denominators and, with dP/dt = r_c Q P_c,
  d ln L/dt_v = Σ_c w_c r_c Σ_p R_p q_v,c · (Q H_v,c). Per node and category one
  vectorised loop (:func:`_pre_pair`, or :func:`_pre_pair_f81` for the F81 family,
  where Q H and Pᵀ q cost 8 operations instead of 16) forms both children's q, the
  two reductions and the internal children's pre-order partials; H is recomputed
  (tips by lookup) rather than stored.
* **General path** (some node rescaled): on the likelihood's (rescaled) partials, H_v =
  P_v x_v of child k of u goes to ``hbuf[u-S, c, k]`` and the pre-order keeps per-branch
  ratios
  Σ_c w_c q·(dP x) / Σ_c w_c q·H, exact at any scale; pre-order partials are rescaled
  by powers of two where they fall below the threshold. The loops follow the
  likelihood kernels' rules (patterns innermost, matrix entries as loop-invariant
  scalars; LLVM's loop vectoriser gives up — "too many memory checks needed" — when a
  loop touches too many distinct arrays, so each writes one or two and reads at most
  three, and the rescaling test is a count returned by the loop).

What the gradient costs, and why it is not ≤ 2 likelihoods here: per internal branch
the pre-order needs two 4×4 products per pattern and category (Pᵀ q for the
pre-order partial and Q H for the derivative) where the post-order needs one (P x);
per tip branch the post-order needs a table lookup and the pre-order a lookup, Q H
and a dot product. On DS1 (24 internal, 27 tip branches) that is ≥ 3 likelihoods'
worth of arithmetic once tips are looked up (the gradient would be ≈ 2 likelihoods
only against a likelihood that multiplied tip indicator rows). Measured (DS1, 1
thread): 4.2 likelihoods (JC69), 5.0 (GTR+Γ4); ``benchmarks/likelihood.py``.

Measured, not kept: forming H and Q H of both children into scratch rows first (tips
by lookups of P and of Q P tables) and then separate loops for the reductions and
each pre-order partial saves the tips' Q H multiply-adds but adds passes over memory:
JC69 101 → 135 µs, GTR+Γ4 476 → 557 µs on DS1. The fused loops of
:func:`_pre_pair` stay.

Where a node's pre-order partial lives: ``loc[v] = (row, k)``, pre[row, c, k]; the
root's third child (unrooted trees) uses the extra row N-S.
"""
from __future__ import annotations

import math

from numba import njit

from .lookup import TIP_LOOKUP, lookup1

from .pruning import (FASTMATH, MODEL_NCAT, MODEL_PI, MODEL_PINV, MODEL_Q, MODEL_RATES,
                      SCALE_THRESHOLD, fast_exp, log_likelihood, matvec, rows,
                      transition_matrices)


# --- post-order keeping H (general models) ------------------------------------------------
# --- pre-order, general models ------------------------------------------------------------
@njit(cache=True, fastmath=FASTMATH)
def _child_gen(pu, hs, ks, kh, kv, xv, pv, dv, slab, w, want_pre):
    """A child v of a node: q = pu ∘ hs[ks], H_v = hs[kh]; slab[2, 2kv] = w q·H_v,
    slab[2, 2kv+1] = w q·(dP x_v); with ``want_pre`` slab[kv] = P_vᵀ q. Returns the
    number of patterns with max_i slab[kv] < SCALE_THRESHOLD (0 without ``want_pre``)."""
    d00 = dv[0, 0]; d01 = dv[0, 1]; d02 = dv[0, 2]; d03 = dv[0, 3]
    d10 = dv[1, 0]; d11 = dv[1, 1]; d12 = dv[1, 2]; d13 = dv[1, 3]
    d20 = dv[2, 0]; d21 = dv[2, 1]; d22 = dv[2, 2]; d23 = dv[2, 3]
    d30 = dv[3, 0]; d31 = dv[3, 1]; d32 = dv[3, 2]; d33 = dv[3, 3]
    m00 = pv[0, 0]; m01 = pv[0, 1]; m02 = pv[0, 2]; m03 = pv[0, 3]
    m10 = pv[1, 0]; m11 = pv[1, 1]; m12 = pv[1, 2]; m13 = pv[1, 3]
    m20 = pv[2, 0]; m21 = pv[2, 1]; m22 = pv[2, 2]; m23 = pv[2, 3]
    m30 = pv[3, 0]; m31 = pv[3, 1]; m32 = pv[3, 2]; m33 = pv[3, 3]
    n = pu.shape[1]
    need = 0
    kl = 2 * kv
    if want_pre:
        for p in range(n):
            q0 = pu[0, p] * hs[ks, 0, p]
            q1 = pu[1, p] * hs[ks, 1, p]
            q2 = pu[2, p] * hs[ks, 2, p]
            q3 = pu[3, p] * hs[ks, 3, p]
            x0 = xv[0, p]
            x1 = xv[1, p]
            x2 = xv[2, p]
            x3 = xv[3, p]
            slab[2, kl, p] = w * (q0 * hs[kh, 0, p] + q1 * hs[kh, 1, p] + q2 * hs[kh, 2, p]
                                  + q3 * hs[kh, 3, p])
            # q·(dP x) = (dPᵀ q)·x
            e0 = d00 * q0 + d10 * q1 + d20 * q2 + d30 * q3
            e1 = d01 * q0 + d11 * q1 + d21 * q2 + d31 * q3
            e2 = d02 * q0 + d12 * q1 + d22 * q2 + d32 * q3
            e3 = d03 * q0 + d13 * q1 + d23 * q2 + d33 * q3
            slab[2, kl + 1, p] = w * (e0 * x0 + e1 * x1 + e2 * x2 + e3 * x3)
            y0 = m00 * q0 + m10 * q1 + m20 * q2 + m30 * q3
            y1 = m01 * q0 + m11 * q1 + m21 * q2 + m31 * q3
            y2 = m02 * q0 + m12 * q1 + m22 * q2 + m32 * q3
            y3 = m03 * q0 + m13 * q1 + m23 * q2 + m33 * q3
            slab[kv, 0, p] = y0
            slab[kv, 1, p] = y1
            slab[kv, 2, p] = y2
            slab[kv, 3, p] = y3
            m = y0 if y0 > y1 else y1
            m2 = y2 if y2 > y3 else y3
            m = m if m > m2 else m2
            need += 1 if m < SCALE_THRESHOLD else 0
    else:
        for p in range(n):
            q0 = pu[0, p] * hs[ks, 0, p]
            q1 = pu[1, p] * hs[ks, 1, p]
            q2 = pu[2, p] * hs[ks, 2, p]
            q3 = pu[3, p] * hs[ks, 3, p]
            x0 = xv[0, p]
            x1 = xv[1, p]
            x2 = xv[2, p]
            x3 = xv[3, p]
            slab[2, kl, p] = w * (q0 * hs[kh, 0, p] + q1 * hs[kh, 1, p] + q2 * hs[kh, 2, p]
                                  + q3 * hs[kh, 3, p])
            e0 = d00 * q0 + d10 * q1 + d20 * q2 + d30 * q3
            e1 = d01 * q0 + d11 * q1 + d21 * q2 + d31 * q3
            e2 = d02 * q0 + d12 * q1 + d22 * q2 + d32 * q3
            e3 = d03 * q0 + d13 * q1 + d23 * q2 + d33 * q3
            slab[2, kl + 1, p] = w * (e0 * x0 + e1 * x1 + e2 * x2 + e3 * x3)
    return need


@njit(cache=True, fastmath=FASTMATH)
def _root_rows_gen(r, model, h):
    """r (4, P) = π ∘ h."""
    for i in range(4):
        pii = model[MODEL_PI + i]
        for p in range(r.shape[1]):
            r[i, p] = pii * h[i, p]


# --- helpers --------------------------------------------------------------------------------
@njit(cache=True, fastmath=FASTMATH)
def _ratio(wfr, slabs, nc, k, tmp):
    """Σ_p wfr_p (Σ_c slab_c[2, 2k+1]) / (Σ_c slab_c[2, 2k]) over patterns with a
    positive denominator; slabs (C, 3, 4, P); tmp (2, P) scratch."""
    npat = wfr.shape[0]
    for p in range(npat):
        tmp[0, p] = slabs[0, 2, 2 * k, p]
        tmp[1, p] = slabs[0, 2, 2 * k + 1, p]
    for c in range(1, nc):
        for p in range(npat):
            tmp[0, p] += slabs[c, 2, 2 * k, p]
            tmp[1, p] += slabs[c, 2, 2 * k + 1, p]
    g = 0.0
    for p in range(npat):
        l = tmp[0, p]
        g += wfr[p] * (tmp[1, p] / l if l > 0.0 else 0.0)
    return g


@njit(cache=True, fastmath=FASTMATH)
def _rescale_pre(slabs, k, nc):
    """Where max_{c,i} slabs[c, k, i, p] < SCALE_THRESHOLD, multiply those entries by
    2^-e (e = frexp exponent of the max); the pre-order scale cancels in every ratio.
    The rare path: called only when some category flagged a pattern."""
    npat = slabs.shape[3]
    for p in range(npat):
        m = 0.0
        for c in range(nc):
            for i in range(4):
                z = slabs[c, k, i, p]
                m = z if z > m else m
        if m < SCALE_THRESHOLD and m > 0.0:
            f, e = math.frexp(m)
            fac = math.ldexp(1.0, -e)
            for c in range(nc):
                for i in range(4):
                    slabs[c, k, i, p] *= fac


# --- fast path: no rescaling anywhere (the common case) -----------------------------------
# When no node was rescaled and every pattern's L_var ≥ 2^-600, the partials are ≤ 1 and
# the pre-order partials cannot underflow (max_{c,i} q_v ≥ L_var/4 at every node: L_var =
# Σ_c w_c q_v,c·H_v,c with H ≤ 1, and Σ_j (Pᵀq)_j = Σ_i q_i; entries 2^-400 below that
# are still normal doubles), so q_v·H_v = L_var,p for
# every branch and one vector R_p = w_p / L_p replaces the per-branch denominators:
#     d ln L / dt_v = Σ_c w_c r_c Σ_p R_p q_v,c,p · (Q H_v,c)_p      (dP/dt = r Q P).
# H_v = P_v x_v is recomputed per node (tips by table lookup) instead of stored.
FAST_LOG_L_MIN = -600.0 * math.log(2.0)


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _h_rows(out, v, c, f81, tipx, tipc, pm, ptab, partials, cur):
    """out (4, P) = H_v = P_v x_v in category c (a tip by table lookup)."""
    s = tipc.shape[0]
    if v < s and not TIP_LOOKUP:
        matvec(out, tipx[v], pm[v, c])
    elif v < s:
        lookup1(out, ptab[v, c], tipc[v])
    elif f81:
        _h_f81(out, partials[cur[v - s], v - s, c], pm[v, c])
    else:
        matvec(out, partials[cur[v - s], v - s, c], pm[v, c])


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _pair(f81, pu, hh, pa, pb, qm, rr, slab, mode):
    if f81:
        return _pre_pair_f81(pu, hh, pa, pb, qm, rr, slab, mode)
    return _pre_pair(pu, hh, pa, pb, qm, rr, slab, mode)


@njit(cache=True, fastmath=FASTMATH)
def _pre_pair(pu, hh, pa, pb, qm, rr, slab, mode):
    """For children a, b of a node with pre-order partial pu (4, P) and hh[0] = H_a,
    hh[1] = H_b: q_a = pu ∘ H_b, q_b = pu ∘ H_a; returns (Σ_p R_p q_a·(Q H_a),
    Σ_p R_p q_b·(Q H_b)) and writes the children's pre-order partials P_aᵀ q_a to
    slab[0] if mode & 1 and P_bᵀ q_b to slab[1] if mode & 2 (internal children)."""
    q00 = qm[0]; q01 = qm[1]; q02 = qm[2]; q03 = qm[3]
    q10 = qm[4]; q11 = qm[5]; q12 = qm[6]; q13 = qm[7]
    q20 = qm[8]; q21 = qm[9]; q22 = qm[10]; q23 = qm[11]
    q30 = qm[12]; q31 = qm[13]; q32 = qm[14]; q33 = qm[15]
    a00 = pa[0, 0]; a01 = pa[0, 1]; a02 = pa[0, 2]; a03 = pa[0, 3]
    a10 = pa[1, 0]; a11 = pa[1, 1]; a12 = pa[1, 2]; a13 = pa[1, 3]
    a20 = pa[2, 0]; a21 = pa[2, 1]; a22 = pa[2, 2]; a23 = pa[2, 3]
    a30 = pa[3, 0]; a31 = pa[3, 1]; a32 = pa[3, 2]; a33 = pa[3, 3]
    b00 = pb[0, 0]; b01 = pb[0, 1]; b02 = pb[0, 2]; b03 = pb[0, 3]
    b10 = pb[1, 0]; b11 = pb[1, 1]; b12 = pb[1, 2]; b13 = pb[1, 3]
    b20 = pb[2, 0]; b21 = pb[2, 1]; b22 = pb[2, 2]; b23 = pb[2, 3]
    b30 = pb[3, 0]; b31 = pb[3, 1]; b32 = pb[3, 2]; b33 = pb[3, 3]
    n = rr.shape[0]
    ga = 0.0
    gb = 0.0
    for p in range(n):
        u0 = pu[0, p]; u1 = pu[1, p]; u2 = pu[2, p]; u3 = pu[3, p]
        x0 = hh[0, 0, p]; x1 = hh[0, 1, p]; x2 = hh[0, 2, p]; x3 = hh[0, 3, p]
        y0 = hh[1, 0, p]; y1 = hh[1, 1, p]; y2 = hh[1, 2, p]; y3 = hh[1, 3, p]
        r = rr[p]
        qa0 = u0 * y0; qa1 = u1 * y1; qa2 = u2 * y2; qa3 = u3 * y3
        qb0 = u0 * x0; qb1 = u1 * x1; qb2 = u2 * x2; qb3 = u3 * x3
        # q·(Q H) = Σ_i q_i Σ_j Q_ij H_j
        ga += r * (qa0 * (q00 * x0 + q01 * x1 + q02 * x2 + q03 * x3)
                   + qa1 * (q10 * x0 + q11 * x1 + q12 * x2 + q13 * x3)
                   + qa2 * (q20 * x0 + q21 * x1 + q22 * x2 + q23 * x3)
                   + qa3 * (q30 * x0 + q31 * x1 + q32 * x2 + q33 * x3))
        gb += r * (qb0 * (q00 * y0 + q01 * y1 + q02 * y2 + q03 * y3)
                   + qb1 * (q10 * y0 + q11 * y1 + q12 * y2 + q13 * y3)
                   + qb2 * (q20 * y0 + q21 * y1 + q22 * y2 + q23 * y3)
                   + qb3 * (q30 * y0 + q31 * y1 + q32 * y2 + q33 * y3))
    if mode & 1:
        for p in range(n):
            u0 = pu[0, p]; u1 = pu[1, p]; u2 = pu[2, p]; u3 = pu[3, p]
            qa0 = u0 * hh[1, 0, p]; qa1 = u1 * hh[1, 1, p]
            qa2 = u2 * hh[1, 2, p]; qa3 = u3 * hh[1, 3, p]
            slab[0, 0, p] = a00 * qa0 + a10 * qa1 + a20 * qa2 + a30 * qa3
            slab[0, 1, p] = a01 * qa0 + a11 * qa1 + a21 * qa2 + a31 * qa3
            slab[0, 2, p] = a02 * qa0 + a12 * qa1 + a22 * qa2 + a32 * qa3
            slab[0, 3, p] = a03 * qa0 + a13 * qa1 + a23 * qa2 + a33 * qa3
    if mode & 2:
        for p in range(n):
            u0 = pu[0, p]; u1 = pu[1, p]; u2 = pu[2, p]; u3 = pu[3, p]
            qb0 = u0 * hh[0, 0, p]; qb1 = u1 * hh[0, 1, p]
            qb2 = u2 * hh[0, 2, p]; qb3 = u3 * hh[0, 3, p]
            slab[1, 0, p] = b00 * qb0 + b10 * qb1 + b20 * qb2 + b30 * qb3
            slab[1, 1, p] = b01 * qb0 + b11 * qb1 + b21 * qb2 + b31 * qb3
            slab[1, 2, p] = b02 * qb0 + b12 * qb1 + b22 * qb2 + b32 * qb3
            slab[1, 3, p] = b03 * qb0 + b13 * qb1 + b23 * qb2 + b33 * qb3
    return ga, gb


@njit(cache=True, fastmath=FASTMATH)
def _h_f81(out, x, pv):
    """out (4, P) = P_v x for P = a I + 1 qᵀ (F81 family): a x + q·x."""
    q0 = pv[1, 0]; q1 = pv[2, 1]; q2 = pv[3, 2]; q3 = pv[0, 3]
    a = pv[0, 0] - q0
    for p in range(out.shape[1]):
        x0 = x[0, p]
        x1 = x[1, p]
        x2 = x[2, p]
        x3 = x[3, p]
        sq = q0 * x0 + q1 * x1 + q2 * x2 + q3 * x3
        out[0, p] = a * x0 + sq
        out[1, p] = a * x1 + sq
        out[2, p] = a * x2 + sq
        out[3, p] = a * x3 + sq


@njit(cache=True, fastmath=FASTMATH)
def _pre_pair_f81(pu, hh, pa, pb, qm, rr, slab, mode):
    """:func:`_pre_pair` for the F81 family: Q_ij = μ π_j (i ≠ j) gives
    (Q H)_i = μ (π·H − H_i), so q·(Q H) = (μπ·H)(Σ_i q_i) − μ q·H; and P = a I + 1 bᵀ
    gives (Pᵀ q)_j = a q_j + b_j Σ_i q_i."""
    m0 = qm[4]; m1 = qm[9]; m2 = qm[14]; m3 = qm[3]      # μ π_j = Q[(j+1)%4, j]
    mu = m0 - qm[0]                                        # Q_10 − Q_00 = μπ_0 + μ(1 − π_0)
    ba0 = pa[1, 0]; ba1 = pa[2, 1]; ba2 = pa[3, 2]; ba3 = pa[0, 3]
    aa = pa[0, 0] - ba0
    bb0 = pb[1, 0]; bb1 = pb[2, 1]; bb2 = pb[3, 2]; bb3 = pb[0, 3]
    ab = pb[0, 0] - bb0
    n = rr.shape[0]
    ga = 0.0
    gb = 0.0
    for p in range(n):
        u0 = pu[0, p]; u1 = pu[1, p]; u2 = pu[2, p]; u3 = pu[3, p]
        x0 = hh[0, 0, p]; x1 = hh[0, 1, p]; x2 = hh[0, 2, p]; x3 = hh[0, 3, p]
        y0 = hh[1, 0, p]; y1 = hh[1, 1, p]; y2 = hh[1, 2, p]; y3 = hh[1, 3, p]
        r = rr[p]
        qa0 = u0 * y0; qa1 = u1 * y1; qa2 = u2 * y2; qa3 = u3 * y3
        qb0 = u0 * x0; qb1 = u1 * x1; qb2 = u2 * x2; qb3 = u3 * x3
        # q_a·H_a = q_b·H_b = Σ_i u_i H_a,i H_b,i
        l = qa0 * x0 + qa1 * x1 + qa2 * x2 + qa3 * x3
        ga += r * ((m0 * x0 + m1 * x1 + m2 * x2 + m3 * x3) * (qa0 + qa1 + qa2 + qa3) - mu * l)
        gb += r * ((m0 * y0 + m1 * y1 + m2 * y2 + m3 * y3) * (qb0 + qb1 + qb2 + qb3) - mu * l)
    if mode & 1:
        for p in range(n):
            qa0 = pu[0, p] * hh[1, 0, p]; qa1 = pu[1, p] * hh[1, 1, p]
            qa2 = pu[2, p] * hh[1, 2, p]; qa3 = pu[3, p] * hh[1, 3, p]
            sq = qa0 + qa1 + qa2 + qa3
            slab[0, 0, p] = aa * qa0 + ba0 * sq
            slab[0, 1, p] = aa * qa1 + ba1 * sq
            slab[0, 2, p] = aa * qa2 + ba2 * sq
            slab[0, 3, p] = aa * qa3 + ba3 * sq
    if mode & 2:
        for p in range(n):
            qb0 = pu[0, p] * hh[0, 0, p]; qb1 = pu[1, p] * hh[0, 1, p]
            qb2 = pu[2, p] * hh[0, 2, p]; qb3 = pu[3, p] * hh[0, 3, p]
            sq = qb0 + qb1 + qb2 + qb3
            slab[1, 0, p] = ab * qb0 + bb0 * sq
            slab[1, 1, p] = ab * qb1 + bb1 * sq
            slab[1, 2, p] = ab * qb2 + bb2 * sq
            slab[1, 3, p] = ab * qb3 + bb3 * sq
    return ga, gb


@njit(cache=True, fastmath=FASTMATH)
def _pi_rows(out, model, h):
    """out (4, P) = π ∘ h (or π alone if h has no rows)."""
    for i in range(4):
        pii = model[MODEL_PI + i]
        if h.shape[0] == 0:
            for p in range(out.shape[1]):
                out[i, p] = pii
        else:
            for p in range(out.shape[1]):
                out[i, p] = pii * h[i, p]


@njit(cache=True, fastmath=FASTMATH)
def preorder_fast(children, n_children, tipx, tipc, model, pm, ptab, partials, cur, pre, scratch,
                  rr, loc, grad):
    """The pre-order pass of the fast path (see above): fills ``grad`` (N-1,).
    pre (N-S+1, C, ≥2, 4, P) pre-order slabs (``loc[v]`` = (row, k) of node v's);
    scratch (3, 4, P); rr (P,) = w_p / L_p."""
    s = tipc.shape[0]
    nc = int(model[MODEL_NCAT])
    n = children.shape[0]
    root = n - 1
    qm = model[MODEL_Q:MODEL_Q + 16]
    nk = n_children[root]
    f81 = model[MODEL_RATES + 2 * nc] != 0.0
    for v in range(n - 1):
        grad[v] = 0.0
    for u in range(s, n):
        for k in range(n_children[u]):
            v = children[u, k]
            if u == root and k == 2:
                loc[v, 0] = n - s
                loc[v, 1] = 0
            else:
                loc[v, 0] = u - s
                loc[v, 1] = k
    hh = scratch[0:2]
    for c in range(nc):
        wr = model[MODEL_RATES + nc + c] * model[MODEL_RATES + c]       # w_c r_c
        # the root: pairs (a, b) with pu = π ∘ H_e, then (e, b) with pu = π ∘ H_a
        a = children[root, 0]
        b = children[root, 1]
        if nk == 3:
            e = children[root, 2]
            _h_rows(scratch[2], e, c, f81, tipx, tipc, pm, ptab, partials, cur)
            _pi_rows(scratch[2], model, scratch[2])
        else:
            e = -1
            _pi_rows(scratch[2], model, scratch[2][0:0])
        _h_rows(hh[0], a, c, f81, tipx, tipc, pm, ptab, partials, cur)
        _h_rows(hh[1], b, c, f81, tipx, tipc, pm, ptab, partials, cur)
        mode = (1 if a >= s else 0) | (2 if b >= s else 0)
        ga, gb = _pair(f81, scratch[2], hh, pm[a, c], pm[b, c], qm, rr, pre[root - s, c], mode)
        grad[a] += wr * ga
        grad[b] += wr * gb
        if nk == 3:
            _pi_rows(scratch[2], model, hh[0])           # π ∘ H_a
            _h_rows(hh[0], e, c, f81, tipx, tipc, pm, ptab, partials, cur)
            ge, _ = _pair(f81, scratch[2], hh, pm[e, c], pm[b, c], qm, rr, pre[n - s, c],
                              1 if e >= s else 0)
            grad[e] += wr * ge
        # internal nodes, parents before children
        for u in range(root - 1, s - 1, -1):
            a = children[u, 0]
            b = children[u, 1]
            pu = pre[loc[u, 0], c, loc[u, 1]]
            _h_rows(hh[0], a, c, f81, tipx, tipc, pm, ptab, partials, cur)
            _h_rows(hh[1], b, c, f81, tipx, tipc, pm, ptab, partials, cur)
            mode = (1 if a >= s else 0) | (2 if b >= s else 0)
            ga, gb = _pair(f81, pu, hh, pm[a, c], pm[b, c], qm, rr, pre[u - s, c], mode)
            grad[a] += wr * ga
            grad[b] += wr * gb


@njit(cache=True, fastmath=FASTMATH)
def fast_path_weights(sflag, cur, model, pattern_weights, lnl, frac_var, rr):
    """rr[p] = w_p / L_p if the fast path applies (no node rescaled, every weighted
    pattern with ln L_var ≥ FAST_LOG_L_MIN); returns whether it does."""
    for r in range(cur.shape[0]):
        if sflag[cur[r], r] != 0:
            return False
    pinv = model[MODEL_PINV]
    for p in range(lnl.shape[0]):
        if pattern_weights[p] > 0.0:
            lv = lnl[p] + (math.log(frac_var[p]) if pinv > 0.0 else 0.0)
            if not (lv >= FAST_LOG_L_MIN):
                return False
    for p in range(lnl.shape[0]):
        rr[p] = pattern_weights[p] * fast_exp(-lnl[p])
    return True


@njit(cache=True, fastmath=FASTMATH)
def gradient(bl, children, n_children, tipx, tipc, model, pattern_weights, inv_lik,
             pm, dpm, ptab, partials, cur, scnt, sflag, sbound, hbuf, pre, lnl, frac_var, acc, escale,
             work, loc, grad):
    """Returns ln L and fills ``grad`` (N-1,) with d ln L / d t_v (per unit branch length).

    Buffers: pm, dpm (N-1, C, 4, 4); partials/cur/scnt/sflag as
    :func:`phylo._kernels.pruning.log_likelihood`; hbuf (N-S, C, 3, 4, P); pre (N-S+1, C, 3, 4, P); lnl, frac_var (P,); acc (4, P);
    escale int32 (P,); work (8, P); loc int32 (N, 2)."""
    total = log_likelihood(bl, children, n_children, tipx, tipc, model, pattern_weights,
                           inv_lik, pm, ptab, partials, cur, scnt, sflag, sbound, lnl,
                           frac_var, acc, escale)
    if total != total:
        return total
    gradient_after_loglik(bl, children, n_children, tipx, tipc, model, pattern_weights, pm,
                          dpm, ptab, partials, cur, sflag, hbuf, pre, lnl, frac_var, work, loc,
                          grad, False)
    return total


@njit(cache=True, fastmath=FASTMATH)
def gradient_after_loglik(bl, children, n_children, tipx, tipc, model, pattern_weights, pm,
                          dpm, ptab, partials, cur, sflag, hbuf, pre, lnl, frac_var, work, loc,
                          grad, have_dpm):
    """The pre-order part of :func:`gradient`, after :func:`log_likelihood` has filled
    the post-order partials, ``lnl`` and ``frac_var`` (on the patterns these arrays
    hold: the pattern-parallel kernels call it once per block). ``have_dpm``: dpm
    already holds dP/dt (the general path computes it otherwise)."""
    s = tipx.shape[0]
    nc = int(model[MODEL_NCAT])
    n = children.shape[0]
    npat = lnl.shape[0]
    root = n - 1
    if fast_path_weights(sflag, cur, model, pattern_weights, lnl, frac_var, work[4]):
        preorder_fast(children, n_children, tipx, tipc, model, pm, ptab, partials, cur, pre,
                      hbuf[0, 0], work[4], loc, grad)
        return
    # general path (some node rescaled): the likelihood's partials and their scaling,
    # plus dP/dt and every child's H = P_v x_v for the per-branch ratios
    f81 = model[MODEL_RATES + 2 * nc] != 0.0
    if not have_dpm:
        transition_matrices(bl, model, pm, dpm, True)    # the same P as above, and dP/dt
    for u in range(s, n):
        for k in range(n_children[u]):
            for c in range(nc):
                _h_rows(hbuf[u - s, c, k], children[u, k], c, f81, tipx, tipc, pm, ptab,
                        partials, cur)
    rootp = work[0:4]        # π ∘ H (the root's pre-order partial for a pair)
    wfr = work[4]
    tmp = work[5:7]
    for p in range(npat):
        wfr[p] = pattern_weights[p] * frac_var[p]
    kroot = n_children[root]
    # where each child's pre-order partial lives
    for u in range(s, n):
        for k in range(n_children[u]):
            v = children[u, k]
            if u == root and k == 2:
                loc[v, 0] = n - s
                loc[v, 1] = 0
            else:
                loc[v, 0] = u - s
                loc[v, 1] = k
    # pre-order: parents before children (the root first), both children at once
    for u in range(root, s - 1, -1):
        npair = 2 if (u == root and kroot == 3) else 1
        for pair in range(npair):
            a = children[u, 0]
            b = children[u, 1]
            row = u - s
            other = children[u, 2] if npair == 2 else -1
            if pair == 1:
                # the root's third child c with q_c = π ∘ H_a ∘ H_b, as the pair (c, a)
                # with pu = π ∘ H_b (the second half, a, is discarded)
                a, b, other = other, children[u, 0], children[u, 1]
                row = n - s
            slabs = pre[row]
            fa = 0
            fb = 0
            for c in range(nc):
                w = model[MODEL_RATES + nc + c]
                if u == root:
                    if other >= 0:
                        _root_rows_gen(rootp, model, hbuf[root - s, c, 2 if pair == 0 else 1])
                    else:
                        for i in range(4):
                            for p in range(npat):
                                rootp[i, p] = model[MODEL_PI + i]
                    pu = rootp
                else:
                    pu = pre[loc[u, 0], c, loc[u, 1]]
                xa = rows(a, c, s, tipx, partials, cur)
                hs = hbuf[u - s, c]
                if pair == 1:
                    # a = the root's child 2 (H at 2), sibling H at 0 (b); slot 0
                    n1 = _child_gen(pu, hs, 0, 2, 0, xa, pm[a, c], dpm[a, c], slabs[c], w,
                                    a >= s)
                    n2 = 0
                else:
                    n1 = _child_gen(pu, hs, 1, 0, 0, xa, pm[a, c], dpm[a, c], slabs[c], w,
                                    a >= s)
                    xb = rows(b, c, s, tipx, partials, cur)
                    n2 = _child_gen(pu, hs, 0, 1, 1, xb, pm[b, c], dpm[b, c], slabs[c], w,
                                    b >= s)
                if n1 > 0:
                    fa += 1
                if n2 > 0:
                    fb += 1
            ga = _ratio(wfr, slabs, nc, 0, tmp)
            if pair == 0:
                gb = _ratio(wfr, slabs, nc, 1, tmp)
            grad[a] = ga
            if pair == 0:
                grad[b] = gb
            if fa == nc and a >= s:
                _rescale_pre(slabs, 0, nc)
            if fb == nc and b >= s and pair == 0:
                _rescale_pre(slabs, 1, nc)
    return
