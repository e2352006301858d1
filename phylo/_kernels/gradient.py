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

Layout of the work (the likelihood kernels' rules: patterns innermost, matrix
entries as loop-invariant scalars, one fused loop per node):

* F81 family (JC69, F81; P = a I + 1 bᵀ, dP/dt = a' I + 1 b'ᵀ): every product with
  P, Pᵀ or dP/dt is a dot product and an axpy, so H_s is recomputed from x_s instead
  of stored, and one loop per internal node u handles both children: it reads pre_u,
  x_a, x_b and writes pre_a, pre_b (tips: nothing) and the gradient terms. With one
  rate category the per-pattern ratio is summed on the fly (no scratch arrays).
* general models: the post-order pass stores H_v = P_v x_v of every non-root v in
  ``hbuf`` (fused into the node loop), and the pre-order loop per child reads pre_u,
  H_sibling, H_v, x_v.
"""
from __future__ import annotations

import math

from numba import njit

from .pruning import (FASTMATH, SCALE_THRESHOLD, child_contribution, model_is_f81,
                      postorder_all, rescale, root_and_finish, rows, transition_matrices)


# --- post-order keeping H (general models) ------------------------------------------------
@njit(cache=True, fastmath=FASTMATH)
def _int_int_h(out, xa, pa, xb, pb, mx, ha, hb):
    """out = (P_a x_a) ∘ (P_b x_b), also stored in ha, hb; mx = max(mx, max_i out)."""
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
        g0 = a00 * x0 + a01 * x1 + a02 * x2 + a03 * x3
        g1 = a10 * x0 + a11 * x1 + a12 * x2 + a13 * x3
        g2 = a20 * x0 + a21 * x1 + a22 * x2 + a23 * x3
        g3 = a30 * x0 + a31 * x1 + a32 * x2 + a33 * x3
        h0 = b00 * y0 + b01 * y1 + b02 * y2 + b03 * y3
        h1 = b10 * y0 + b11 * y1 + b12 * y2 + b13 * y3
        h2 = b20 * y0 + b21 * y1 + b22 * y2 + b23 * y3
        h3 = b30 * y0 + b31 * y1 + b32 * y2 + b33 * y3
        ha[0, p] = g0
        ha[1, p] = g1
        ha[2, p] = g2
        ha[3, p] = g3
        hb[0, p] = h0
        hb[1, p] = h1
        hb[2, p] = h2
        hb[3, p] = h3
        z0 = g0 * h0
        z1 = g1 * h1
        z2 = g2 * h2
        z3 = g3 * h3
        out[0, p] = z0
        out[1, p] = z1
        out[2, p] = z2
        out[3, p] = z3
        m = mx[p]
        m = z0 if z0 > m else m
        m = z1 if z1 > m else m
        m = z2 if z2 > m else m
        m = z3 if z3 > m else m
        mx[p] = m


# --- pre-order, F81 family ----------------------------------------------------------------
@njit(cache=True, fastmath=FASTMATH, inline="always")
def _f81(pv):
    """(a, b0..b3) of P = a I + 1 bᵀ (also for dP/dt)."""
    b0 = pv[1, 0]
    b1 = pv[2, 1]
    b2 = pv[3, 2]
    b3 = pv[0, 3]
    return pv[0, 0] - b0, b0, b1, b2, b3


@njit(cache=True, fastmath=FASTMATH)
def _pair_f81(pu, xa, xb, pa, pb, dpa, dpb, outa, outb, mxa, mxb, w, lsa, dsa, lsb, dsb,
              wfr, one):
    """Both children a, b of one node, one category. q_a = pu ∘ H_b, q_b = pu ∘ H_a;
    pre_a = P_aᵀ q_a into outa (mxa = max), the same for b. With ``one`` (a single
    rate category) returns (Σ_p wfr_p dL_a/L_a, the same for b); otherwise adds
    w·(q·H) to ls and w·(q·dP x) to ds and returns zeros."""
    aa, ba0, ba1, ba2, ba3 = _f81(pa)
    ab, bb0, bb1, bb2, bb3 = _f81(pb)
    da, ea0, ea1, ea2, ea3 = _f81(dpa)
    db, eb0, eb1, eb2, eb3 = _f81(dpb)
    n = pu.shape[1]
    ga = 0.0
    gb = 0.0
    for p in range(n):
        u0 = pu[0, p]
        u1 = pu[1, p]
        u2 = pu[2, p]
        u3 = pu[3, p]
        x0 = xa[0, p]
        x1 = xa[1, p]
        x2 = xa[2, p]
        x3 = xa[3, p]
        y0 = xb[0, p]
        y1 = xb[1, p]
        y2 = xb[2, p]
        y3 = xb[3, p]
        sa = ba0 * x0 + ba1 * x1 + ba2 * x2 + ba3 * x3
        sb = bb0 * y0 + bb1 * y1 + bb2 * y2 + bb3 * y3
        # q_a = pu ∘ H_b, q_b = pu ∘ H_a
        qa0 = u0 * (ab * y0 + sb)
        qa1 = u1 * (ab * y1 + sb)
        qa2 = u2 * (ab * y2 + sb)
        qa3 = u3 * (ab * y3 + sb)
        qb0 = u0 * (aa * x0 + sa)
        qb1 = u1 * (aa * x1 + sa)
        qb2 = u2 * (aa * x2 + sa)
        qb3 = u3 * (aa * x3 + sa)
        tqa = qa0 + qa1 + qa2 + qa3
        tqb = qb0 + qb1 + qb2 + qb3
        qxa = qa0 * x0 + qa1 * x1 + qa2 * x2 + qa3 * x3
        qyb = qb0 * y0 + qb1 * y1 + qb2 * y2 + qb3 * y3
        # q·(P x) = a (q·x) + (b·x) Σq ; q·(dP x) = a' (q·x) + (b'·x) Σq
        la = aa * qxa + sa * tqa
        lb = ab * qyb + sb * tqb
        fa = da * qxa + (ea0 * x0 + ea1 * x1 + ea2 * x2 + ea3 * x3) * tqa
        fb = db * qyb + (eb0 * y0 + eb1 * y1 + eb2 * y2 + eb3 * y3) * tqb
        if one:
            ga += wfr[p] * (fa / la if la > 0.0 else 0.0)
            gb += wfr[p] * (fb / lb if lb > 0.0 else 0.0)
        else:
            lsa[p] += w * la
            dsa[p] += w * fa
            lsb[p] += w * lb
            dsb[p] += w * fb
        # pre_a = P_aᵀ q_a = a q_a + b Σq_a
        z0 = aa * qa0 + ba0 * tqa
        z1 = aa * qa1 + ba1 * tqa
        z2 = aa * qa2 + ba2 * tqa
        z3 = aa * qa3 + ba3 * tqa
        outa[0, p] = z0
        outa[1, p] = z1
        outa[2, p] = z2
        outa[3, p] = z3
        m = mxa[p]
        m = z0 if z0 > m else m
        m = z1 if z1 > m else m
        m = z2 if z2 > m else m
        m = z3 if z3 > m else m
        mxa[p] = m
        z0 = ab * qb0 + bb0 * tqb
        z1 = ab * qb1 + bb1 * tqb
        z2 = ab * qb2 + bb2 * tqb
        z3 = ab * qb3 + bb3 * tqb
        outb[0, p] = z0
        outb[1, p] = z1
        outb[2, p] = z2
        outb[3, p] = z3
        m = mxb[p]
        m = z0 if z0 > m else m
        m = z1 if z1 > m else m
        m = z2 if z2 > m else m
        m = z3 if z3 > m else m
        mxb[p] = m
    return ga, gb


@njit(cache=True, fastmath=FASTMATH)
def _root_rows_f81(r, c, v, s, model, tipx, partials, cur, pm):
    """r (4, P) = π ∘ (P_v x_v) for category c (F81)."""
    x = rows(v, c, s, tipx, partials, cur)
    a, b0, b1, b2, b3 = _f81(pm[v, c])
    pi0 = model[2]
    pi1 = model[3]
    pi2 = model[4]
    pi3 = model[5]
    for p in range(r.shape[1]):
        x0 = x[0, p]
        x1 = x[1, p]
        x2 = x[2, p]
        x3 = x[3, p]
        t = b0 * x0 + b1 * x1 + b2 * x2 + b3 * x3
        r[0, p] = pi0 * (a * x0 + t)
        r[1, p] = pi1 * (a * x1 + t)
        r[2, p] = pi2 * (a * x2 + t)
        r[3, p] = pi3 * (a * x3 + t)


# --- pre-order, general models ------------------------------------------------------------
@njit(cache=True, fastmath=FASTMATH)
def _child_gen(pu, hs, hv, xv, pv, dv, out, w, ls, ds, mx):
    """Internal child v: q = pu ∘ H_s; ls += w q·H_v; ds += w q·(dP x_v);
    out = P_vᵀ q; mx = max(mx, max_i out)."""
    d00 = dv[0, 0]; d01 = dv[0, 1]; d02 = dv[0, 2]; d03 = dv[0, 3]
    d10 = dv[1, 0]; d11 = dv[1, 1]; d12 = dv[1, 2]; d13 = dv[1, 3]
    d20 = dv[2, 0]; d21 = dv[2, 1]; d22 = dv[2, 2]; d23 = dv[2, 3]
    d30 = dv[3, 0]; d31 = dv[3, 1]; d32 = dv[3, 2]; d33 = dv[3, 3]
    m00 = pv[0, 0]; m01 = pv[0, 1]; m02 = pv[0, 2]; m03 = pv[0, 3]
    m10 = pv[1, 0]; m11 = pv[1, 1]; m12 = pv[1, 2]; m13 = pv[1, 3]
    m20 = pv[2, 0]; m21 = pv[2, 1]; m22 = pv[2, 2]; m23 = pv[2, 3]
    m30 = pv[3, 0]; m31 = pv[3, 1]; m32 = pv[3, 2]; m33 = pv[3, 3]
    n = pu.shape[1]
    for p in range(n):
        q0 = pu[0, p] * hs[0, p]
        q1 = pu[1, p] * hs[1, p]
        q2 = pu[2, p] * hs[2, p]
        q3 = pu[3, p] * hs[3, p]
        x0 = xv[0, p]
        x1 = xv[1, p]
        x2 = xv[2, p]
        x3 = xv[3, p]
        ls[p] += w * (q0 * hv[0, p] + q1 * hv[1, p] + q2 * hv[2, p] + q3 * hv[3, p])
        # q·(dP x) = (dPᵀ q)·x
        e0 = d00 * q0 + d10 * q1 + d20 * q2 + d30 * q3
        e1 = d01 * q0 + d11 * q1 + d21 * q2 + d31 * q3
        e2 = d02 * q0 + d12 * q1 + d22 * q2 + d32 * q3
        e3 = d03 * q0 + d13 * q1 + d23 * q2 + d33 * q3
        ds[p] += w * (e0 * x0 + e1 * x1 + e2 * x2 + e3 * x3)
        y0 = m00 * q0 + m10 * q1 + m20 * q2 + m30 * q3
        y1 = m01 * q0 + m11 * q1 + m21 * q2 + m31 * q3
        y2 = m02 * q0 + m12 * q1 + m22 * q2 + m32 * q3
        y3 = m03 * q0 + m13 * q1 + m23 * q2 + m33 * q3
        out[0, p] = y0
        out[1, p] = y1
        out[2, p] = y2
        out[3, p] = y3
        m = mx[p]
        m = y0 if y0 > m else m
        m = y1 if y1 > m else m
        m = y2 if y2 > m else m
        m = y3 if y3 > m else m
        mx[p] = m


@njit(cache=True, fastmath=FASTMATH)
def _tip_gen(pu, hs, hv, xv, dv, w, ls, ds):
    """Tip child v: as :func:`_child_gen` without the pre-order partial."""
    d00 = dv[0, 0]; d01 = dv[0, 1]; d02 = dv[0, 2]; d03 = dv[0, 3]
    d10 = dv[1, 0]; d11 = dv[1, 1]; d12 = dv[1, 2]; d13 = dv[1, 3]
    d20 = dv[2, 0]; d21 = dv[2, 1]; d22 = dv[2, 2]; d23 = dv[2, 3]
    d30 = dv[3, 0]; d31 = dv[3, 1]; d32 = dv[3, 2]; d33 = dv[3, 3]
    n = pu.shape[1]
    for p in range(n):
        q0 = pu[0, p] * hs[0, p]
        q1 = pu[1, p] * hs[1, p]
        q2 = pu[2, p] * hs[2, p]
        q3 = pu[3, p] * hs[3, p]
        x0 = xv[0, p]
        x1 = xv[1, p]
        x2 = xv[2, p]
        x3 = xv[3, p]
        ls[p] += w * (q0 * hv[0, p] + q1 * hv[1, p] + q2 * hv[2, p] + q3 * hv[3, p])
        e0 = d00 * q0 + d10 * q1 + d20 * q2 + d30 * q3
        e1 = d01 * q0 + d11 * q1 + d21 * q2 + d31 * q3
        e2 = d02 * q0 + d12 * q1 + d22 * q2 + d32 * q3
        e3 = d03 * q0 + d13 * q1 + d23 * q2 + d33 * q3
        ds[p] += w * (e0 * x0 + e1 * x1 + e2 * x2 + e3 * x3)


@njit(cache=True, fastmath=FASTMATH)
def _root_rows_gen(r, model, h):
    """r (4, P) = π ∘ h."""
    for i in range(4):
        pii = model[2 + i]
        for p in range(r.shape[1]):
            r[i, p] = pii * h[i, p]


# --- helpers --------------------------------------------------------------------------------
@njit(cache=True, fastmath=FASTMATH)
def _ratio(wfr, ls, ds):
    """Σ_p wfr_p ds_p / ls_p over patterns with ls_p > 0."""
    g = 0.0
    for p in range(ls.shape[0]):
        l = ls[p]
        g += wfr[p] * (ds[p] / l if l > 0.0 else 0.0)
    return g


@njit(cache=True, fastmath=FASTMATH)
def _zero(a, b, c, d):
    for p in range(a.shape[0]):
        a[p] = 0.0
        b[p] = 0.0
        c[p] = 0.0
        d[p] = 0.0


@njit(cache=True, fastmath=FASTMATH)
def _rescale_pre(pre, r, nc, mx):
    """Where mx_p < SCALE_THRESHOLD, multiply pre[r, :, :, p] by 2^-e (e = frexp
    exponent of mx_p); the pre-order scale cancels in every ratio."""
    npat = mx.shape[0]
    need = 0
    for p in range(npat):
        if mx[p] < SCALE_THRESHOLD:
            need += 1
    if need == 0:
        return
    for p in range(npat):
        m = mx[p]
        if m < SCALE_THRESHOLD and m > 0.0:
            f, e = math.frexp(m)
            fac = math.ldexp(1.0, -e)
            for c in range(nc):
                for i in range(4):
                    pre[r, c, i, p] *= fac


@njit(cache=True, fastmath=FASTMATH)
def gradient(bl, children, n_children, tipx, model, pattern_weights, inv_lik,
             pm, dpm, partials, cur, scnt, sflag, hbuf, pre, lnl, frac_var, acc, escale,
             work, grad):
    """Returns ln L and fills ``grad`` (N-1,) with d ln L / d t_v (per unit branch length).

    Buffers: pm, dpm (N-1, C, 4, 4); partials/cur/scnt/sflag as
    :func:`phylo._kernels.pruning.log_likelihood`; hbuf (N-1, C, 4, P) (general models
    only); pre (N-S, C, 4, P); lnl, frac_var (P,); acc (4, P); escale int32 (P,);
    work (16, P)."""
    s = tipx.shape[0]
    nc = int(model[0])
    n = children.shape[0]
    npat = lnl.shape[0]
    root = n - 1
    f81 = model_is_f81(model)
    transition_matrices(bl, model, pm, dpm, True)
    if f81:
        postorder_all(children, tipx, model, pm, partials, cur, scnt, sflag, frac_var, False)
    else:
        mx0 = work[15]
        for u in range(s, root):
            r = u - s
            a = children[u, 0]
            b = children[u, 1]
            for p in range(npat):
                mx0[p] = 0.0
            for c in range(nc):
                _int_int_h(partials[cur[r], r, c], rows(a, c, s, tipx, partials, cur), pm[a, c],
                           rows(b, c, s, tipx, partials, cur), pm[b, c], mx0, hbuf[a, c],
                           hbuf[b, c])
            rescale(r, cur[r], nc, partials, mx0, scnt, sflag)
        for k in range(n_children[root]):
            v = children[root, k]
            for c in range(nc):
                child_contribution(v, c, tipx, model, pm, partials, cur, hbuf[v, c], True)
    total = root_and_finish(children, n_children, tipx, model, pattern_weights, inv_lik, pm,
                            partials, cur, scnt, sflag, lnl, frac_var, acc, escale)
    # scratch rows
    rootp = work[0:4]        # π ∘ H (the root's pre-order partial for a pair)
    dummy = work[4:8]        # pre-order partial of a tip (discarded)
    wfr = work[8]
    lsa = work[9]
    dsa = work[10]
    lsb = work[11]
    dsb = work[12]
    mxa = work[13]
    mxb = work[14]
    for p in range(npat):
        wfr[p] = pattern_weights[p] * frac_var[p]
    one = nc == 1 and f81   # per-pattern ratios summed inside the F81 loop
    kroot = n_children[root]
    # pre-order: parents before children (the root first); pairs (a, b) of children
    for u in range(root, s - 1, -1):
        npair = 1 if (u != root or kroot == 2) else 2
        for pair in range(npair):
            if u == root and kroot == 3:
                if pair == 0:
                    a = children[u, 0]
                    b = children[u, 1]
                    other = children[u, 2]
                else:
                    a = children[u, 2]
                    b = children[u, 0]
                    other = children[u, 1]
            else:
                a = children[u, 0]
                b = children[u, 1]
                other = -1
            for p in range(npat):
                mxa[p] = 0.0
                mxb[p] = 0.0
            if not one:
                _zero(lsa, dsa, lsb, dsb)
            ga = 0.0
            gb = 0.0
            for c in range(nc):
                w = model[58 + nc + c]
                outa = pre[a - s, c] if a >= s else dummy
                outb = pre[b - s, c] if (b >= s and pair == 0) else dummy
                if u == root:
                    if other >= 0:
                        if f81:
                            _root_rows_f81(rootp, c, other, s, model, tipx, partials, cur, pm)
                        else:
                            _root_rows_gen(rootp, model, hbuf[other, c])
                    else:
                        for i in range(4):
                            for p in range(npat):
                                rootp[i, p] = model[2 + i]
                    pu = rootp
                else:
                    pu = pre[u - s, c]
                xa = rows(a, c, s, tipx, partials, cur)
                xb = rows(b, c, s, tipx, partials, cur)
                if f81:
                    g1, g2 = _pair_f81(pu, xa, xb, pm[a, c], pm[b, c], dpm[a, c], dpm[b, c],
                                       outa, outb, mxa, mxb, w, lsa, dsa, lsb, dsb, wfr, one)
                    ga += g1
                    gb += g2
                else:
                    if a >= s:
                        _child_gen(pu, hbuf[b, c], hbuf[a, c], xa, pm[a, c], dpm[a, c], outa,
                                   w, lsa, dsa, mxa)
                    else:
                        _tip_gen(pu, hbuf[b, c], hbuf[a, c], xa, dpm[a, c], w, lsa, dsa)
                    if pair == 1:
                        pass  # b was done with the first pair of the root
                    elif b >= s:
                        _child_gen(pu, hbuf[a, c], hbuf[b, c], xb, pm[b, c], dpm[b, c], outb,
                                   w, lsb, dsb, mxb)
                    else:
                        _tip_gen(pu, hbuf[a, c], hbuf[b, c], xb, dpm[b, c], w, lsb, dsb)
            if not one:
                ga = _ratio(wfr, lsa, dsa)
                if pair == 0:
                    gb = _ratio(wfr, lsb, dsb)
            grad[a] = ga
            if pair == 0:
                grad[b] = gb
            if a >= s:
                _rescale_pre(pre, a - s, nc, mxa)
            if b >= s and pair == 0:
                _rescale_pre(pre, b - s, nc, mxb)
    return total
