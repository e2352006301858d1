"""Gradient of ln L with respect to every branch length in O(S) (Ji et al. 2020).

Ji X., Zhang Z., Holbrook A., Nishimura A., Baele G., Rambaut A., Lemey P.,
Suchard M.A. (2020) "Gradients do grow on trees: a linear-time O(N)-dimensional
gradient for statistical phylogenetics", Mol. Biol. Evol. 37:3047-3060.

The post-order pass (:mod:`phylo._kernels.pruning`) keeps H_v = P_v x_v for every
non-root v in ``hbuf``; then a pre-order pass computes, for every internal node u, the
pre-order partial ``pre[u, c, i, p]`` ∝ Pr(data outside the subtree of u, state i at
u). For a branch v below u with siblings s, Q_v = pre_u ∘ Π_s H_s (π at the root) and

    dL_p/dt_v = Σ_c w_c Q_v,c · (dP_v,c/dt x_v,c),   L_p = Σ_c w_c Q_v,c · H_v,c.

Both are computed at the same (arbitrary) scale, so their ratio is exact whatever
rescaling was applied; no scale logarithms are needed in the pre-order pass. With +I,
d ln L_p/dt = (dL_var/dt / L_var) · (L_var / L_p), the second factor from the root.
"""
from __future__ import annotations

import math

from numba import njit

from .pruning import (FASTMATH, SCALE_THRESHOLD, child_contribution, rescale,
                      root_and_finish, rows, transition_matrices)


@njit(cache=True, fastmath=FASTMATH)
def _product(out, ha, hb, mx):
    n = out.shape[1]
    for p in range(n):
        z0 = ha[0, p] * hb[0, p]
        z1 = ha[1, p] * hb[1, p]
        z2 = ha[2, p] * hb[2, p]
        z3 = ha[3, p] * hb[3, p]
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


@njit(cache=True, fastmath=FASTMATH)
def _q(q, c, u, s, is_root, model, pre, h1, h2, has2):
    """q (4, P) = pre_u ∘ H_s1 (∘ H_s2); pre_root = π."""
    n = q.shape[1]
    for i in range(4):
        qi = q[i]
        a = h1[i]
        if is_root:
            pii = model[2 + i]
            if has2:
                b = h2[i]
                for p in range(n):
                    qi[p] = pii * a[p] * b[p]
            else:
                for p in range(n):
                    qi[p] = pii * a[p]
        else:
            pu = pre[u - s, c, i]
            if has2:
                b = h2[i]
                for p in range(n):
                    qi[p] = pu[p] * a[p] * b[p]
            else:
                for p in range(n):
                    qi[p] = pu[p] * a[p]


@njit(cache=True, fastmath=FASTMATH)
def _branch(q, hv, x, d, pv, out, w, lsum, dsum, mx):
    d00 = d[0, 0]; d01 = d[0, 1]; d02 = d[0, 2]; d03 = d[0, 3]
    d10 = d[1, 0]; d11 = d[1, 1]; d12 = d[1, 2]; d13 = d[1, 3]
    d20 = d[2, 0]; d21 = d[2, 1]; d22 = d[2, 2]; d23 = d[2, 3]
    d30 = d[3, 0]; d31 = d[3, 1]; d32 = d[3, 2]; d33 = d[3, 3]
    m00 = pv[0, 0]; m01 = pv[0, 1]; m02 = pv[0, 2]; m03 = pv[0, 3]
    m10 = pv[1, 0]; m11 = pv[1, 1]; m12 = pv[1, 2]; m13 = pv[1, 3]
    m20 = pv[2, 0]; m21 = pv[2, 1]; m22 = pv[2, 2]; m23 = pv[2, 3]
    m30 = pv[3, 0]; m31 = pv[3, 1]; m32 = pv[3, 2]; m33 = pv[3, 3]
    n = q.shape[1]
    for p in range(n):
        x0 = x[0, p]
        x1 = x[1, p]
        x2 = x[2, p]
        x3 = x[3, p]
        q0 = q[0, p]
        q1 = q[1, p]
        q2 = q[2, p]
        q3 = q[3, p]
        ls = w * (q0 * hv[0, p] + q1 * hv[1, p] + q2 * hv[2, p] + q3 * hv[3, p])
        e0 = d00 * x0 + d01 * x1 + d02 * x2 + d03 * x3
        e1 = d10 * x0 + d11 * x1 + d12 * x2 + d13 * x3
        e2 = d20 * x0 + d21 * x1 + d22 * x2 + d23 * x3
        e3 = d30 * x0 + d31 * x1 + d32 * x2 + d33 * x3
        lsum[p] += ls
        dsum[p] += w * (q0 * e0 + q1 * e1 + q2 * e2 + q3 * e3)
        y0 = q0 * m00 + q1 * m10 + q2 * m20 + q3 * m30
        y1 = q0 * m01 + q1 * m11 + q2 * m21 + q3 * m31
        y2 = q0 * m02 + q1 * m12 + q2 * m22 + q3 * m32
        y3 = q0 * m03 + q1 * m13 + q2 * m23 + q3 * m33
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
def gradient(bl, children, n_children, tipx, model, pattern_weights, inv_lik,
             pm, dpm, partials, cur, scnt, sflag, hbuf, pre, lnl, frac_var, acc, escale,
             work, grad):
    """Returns ln L and fills ``grad`` (N-1,) with d ln L / d t_v (per unit branch length).

    Buffers: pm, dpm (N-1, C, 4, 4); partials/cur/scnt/sflag as
    :func:`phylo._kernels.pruning.log_likelihood`; hbuf (N-1, C, 4, P); pre
    (N-S, C, 4, P); lnl, frac_var (P,); acc (4, P); escale int32 (P,); work (7, P)."""
    s = tipx.shape[0]
    nc = int(model[0])
    n = children.shape[0]
    npat = lnl.shape[0]
    transition_matrices(bl, model, pm, dpm, True)
    mx = work[6]
    # post-order, keeping H_v = P_v x_v of every non-root node
    for u in range(s, n):
        for k in range(n_children[u]):
            v = children[u, k]
            for c in range(nc):
                child_contribution(v, c, tipx, model, pm, partials, cur, hbuf[v, c], True)
        if u < n - 1:
            r = u - s
            a = children[u, 0]
            b = children[u, 1]
            for p in range(npat):
                mx[p] = 0.0
            for c in range(nc):
                _product(partials[cur[r], r, c], hbuf[a, c], hbuf[b, c], mx)
            rescale(r, cur[r], nc, partials, mx, scnt, sflag)
    total = root_and_finish(children, n_children, tipx, model, pattern_weights, inv_lik, pm,
                            partials, cur, scnt, sflag, lnl, frac_var, acc, escale)
    # pre-order (acc is free now: the discarded pre-order partial of tips)
    q = work[:4]
    dsum = work[4]
    lsum = work[5]
    for u in range(n - 1, s - 1, -1):
        k = n_children[u]
        is_root = u == n - 1
        for ci in range(k):
            v = children[u, ci]
            s1 = children[u, (ci + 1) % k]
            s2 = children[u, (ci + 2) % k] if k == 3 else s1
            for p in range(npat):
                mx[p] = 0.0
                dsum[p] = 0.0
                lsum[p] = 0.0
            for c in range(nc):
                w = model[58 + nc + c]
                _q(q, c, u, s, is_root, model, pre, hbuf[s1, c], hbuf[s2, c], k == 3)
                out = acc if v < s else pre[v - s, c]
                _branch(q, hbuf[v, c], rows(v, c, s, tipx, partials, cur), dpm[v, c], pm[v, c],
                        out, w, lsum, dsum, mx)
            acc_g = 0.0
            for p in range(npat):
                if lsum[p] > 0.0:
                    acc_g += pattern_weights[p] * frac_var[p] * dsum[p] / lsum[p]
            grad[v] = acc_g
            if v >= s:
                r = v - s
                for p in range(npat):
                    m = mx[p]
                    if m < SCALE_THRESHOLD and m > 0.0:
                        f, e = math.frexp(m)
                        fac = math.ldexp(1.0, -e)
                        for c in range(nc):
                            for i in range(4):
                                pre[r, c, i, p] *= fac
    return total
