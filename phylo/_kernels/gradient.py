"""Gradient of ln L with respect to every branch length in O(S) (Ji et al. 2020).

Ji X., Zhang Z., Holbrook A., Nishimura A., Baele G., Rambaut A., Lemey P.,
Suchard M.A. (2020) "Gradients do grow on trees: a linear-time O(N)-dimensional
gradient for statistical phylogenetics", Mol. Biol. Evol. 37:3047-3060.

After the post-order pass (:mod:`phylo._kernels.pruning`, keeping H_v = P_v x_v
for every non-root v), a pre-order pass computes, for every node u, the pre-order partial
``pre[u, c, p, i]`` ∝ Pr(data outside the subtree of u, state i at u). For a branch v
below u with siblings s, Q_v = pre_u ∘ Π_s H_s (π at the root) and

    dL_p/dt_v = Σ_c w_c Q_v,c · (dP_v,c/dt x_v,c),   L_p = Σ_c w_c Q_v,c · H_v,c.

Both are computed at the same (arbitrary) scale, so their ratio is exact whatever
rescaling was applied; no scale logarithms are needed in the pre-order pass. With +I,
d ln L_p/dt = (dL_var/dt / L_var) · (L_var / L_p), the second factor from the root.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .pruning import (FASTMATH, SCALE_THRESHOLD, _rows, block_size, finish, postorder,
                      root_block, transition_matrices)


@njit(cache=True, fastmath=FASTMATH)
def gradient(bl, children, n_children, tipx, model, pattern_weights, inv_lik,
             pm, dpm, partials, hbuf, pre, scale_log, lnl, frac_var, work, grad):
    """Returns ln L and fills ``grad`` (N-1,) with d ln L / d t_v (per unit branch length).

    Buffers: pm, dpm (N-1, C, 4, 4); partials, pre (N-S, C, 4, P); hbuf (N-1, C, 4, P);
    scale_log, lnl, frac_var (P,); work (8, P) scratch."""
    s = tipx.shape[0]
    npat = tipx.shape[2]
    nc = int(model[0])
    n = children.shape[0]
    transition_matrices(bl, model, pm, dpm, True)
    for v in range(n - 1):
        grad[v] = 0.0
    bs = block_size(n - s, nc, npat)
    total = 0.0
    # block by block (cache-resident): post-order, root, then the pre-order pass
    for p0 in range(0, npat, bs):
        p1 = min(npat, p0 + bs)
        postorder(children, tipx, model, pm, partials, scale_log, hbuf, True, frac_var, p0, p1)
        root_block(children, n_children, tipx, model, pm, partials, lnl, work[:4], hbuf, True,
                   p0, p1)
        total += finish(model, scale_log, pattern_weights, inv_lik, lnl, frac_var, p0, p1)
        _preorder_block(children, n_children, tipx, model, pattern_weights, pm, dpm, partials,
                        hbuf, pre, frac_var, work, grad, p0, p1)
    return total


@njit(cache=True, fastmath=FASTMATH)
def _preorder_block(children, n_children, tipx, model, pattern_weights, pm, dpm, partials,
                    hbuf, pre, frac_var, work, grad, p0, p1):
    """Pre-order pass for patterns p0..p1-1, adding each branch's terms to ``grad``."""
    s = tipx.shape[0]
    nc = int(model[0])
    n = children.shape[0]
    q = work[:4]
    dsum = work[4]
    lsum = work[5]
    mx = work[6]
    for u in range(n - 1, s - 1, -1):
        k = n_children[u]
        is_root = u == n - 1
        for ci in range(k):
            v = children[u, ci]
            s1 = children[u, (ci + 1) % k]
            s2 = children[u, (ci + 2) % k] if k == 3 else -1
            internal = v >= s
            for p in range(p0, p1):
                dsum[p] = 0.0
                lsum[p] = 0.0
                mx[p] = 0.0
            for c in range(nc):
                w = model[58 + nc + c]
                # Q_v = pre_u ∘ Π_siblings H_s  (pre_root = π)
                for i in range(4):
                    h1 = hbuf[s1, c, i]
                    qi = q[i]
                    if is_root:
                        pii = model[2 + i]
                        for p in range(p0, p1):
                            qi[p] = pii * h1[p]
                    else:
                        pu = pre[u - s, c, i]
                        for p in range(p0, p1):
                            qi[p] = pu[p] * h1[p]
                    if s2 >= 0:
                        h2 = hbuf[s2, c, i]
                        for p in range(p0, p1):
                            qi[p] *= h2[p]
                x = _rows(v, c, s, tipx, partials)
                hv = hbuf[v, c]
                d00 = dpm[v, c, 0, 0]; d01 = dpm[v, c, 0, 1]; d02 = dpm[v, c, 0, 2]; d03 = dpm[v, c, 0, 3]
                d10 = dpm[v, c, 1, 0]; d11 = dpm[v, c, 1, 1]; d12 = dpm[v, c, 1, 2]; d13 = dpm[v, c, 1, 3]
                d20 = dpm[v, c, 2, 0]; d21 = dpm[v, c, 2, 1]; d22 = dpm[v, c, 2, 2]; d23 = dpm[v, c, 2, 3]
                d30 = dpm[v, c, 3, 0]; d31 = dpm[v, c, 3, 1]; d32 = dpm[v, c, 3, 2]; d33 = dpm[v, c, 3, 3]
                for p in range(p0, p1):
                    x0 = x[0, p]
                    x1 = x[1, p]
                    x2 = x[2, p]
                    x3 = x[3, p]
                    q0 = q[0, p]
                    q1 = q[1, p]
                    q2 = q[2, p]
                    q3 = q[3, p]
                    lsum[p] += w * (q0 * hv[0, p] + q1 * hv[1, p] + q2 * hv[2, p] + q3 * hv[3, p])
                    e0 = d00 * x0 + d01 * x1 + d02 * x2 + d03 * x3
                    e1 = d10 * x0 + d11 * x1 + d12 * x2 + d13 * x3
                    e2 = d20 * x0 + d21 * x1 + d22 * x2 + d23 * x3
                    e3 = d30 * x0 + d31 * x1 + d32 * x2 + d33 * x3
                    dsum[p] += w * (q0 * e0 + q1 * e1 + q2 * e2 + q3 * e3)
                if internal:
                    # pre-order partial at v: the row vector Q_v times P_v
                    m00 = pm[v, c, 0, 0]; m01 = pm[v, c, 0, 1]; m02 = pm[v, c, 0, 2]; m03 = pm[v, c, 0, 3]
                    m10 = pm[v, c, 1, 0]; m11 = pm[v, c, 1, 1]; m12 = pm[v, c, 1, 2]; m13 = pm[v, c, 1, 3]
                    m20 = pm[v, c, 2, 0]; m21 = pm[v, c, 2, 1]; m22 = pm[v, c, 2, 2]; m23 = pm[v, c, 2, 3]
                    m30 = pm[v, c, 3, 0]; m31 = pm[v, c, 3, 1]; m32 = pm[v, c, 3, 2]; m33 = pm[v, c, 3, 3]
                    out = pre[v - s, c]
                    for p in range(p0, p1):
                        q0 = q[0, p]
                        q1 = q[1, p]
                        q2 = q[2, p]
                        q3 = q[3, p]
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
            acc = 0.0
            for p in range(p0, p1):
                if lsum[p] > 0.0:
                    acc += pattern_weights[p] * frac_var[p] * dsum[p] / lsum[p]
            grad[v] += acc
            if internal:
                r = v - s
                for p in range(p0, p1):
                    m = mx[p]
                    if m < SCALE_THRESHOLD and m > 0.0:
                        inv = 1.0 / m
                        for c in range(nc):
                            for i in range(4):
                                pre[r, c, i, p] *= inv
