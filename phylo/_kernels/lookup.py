"""Tip-state table lookups for the pruning kernels, as LLVM vector permutes.

A tip's contribution to its parent is ``P x`` with ``x`` the indicator of the tip's
4-bit state mask m (A=1 C=2 G=4 T=8, 15 = missing), i.e. ``T[i, m] = Σ_{j∈m} P_ij``:
a lookup in a 16-entry table per row. Done as 4 indicator dot products it costs 16
multiply-adds per pattern and reads 32 bytes of indicator rows; as a lookup it reads
one byte. LLVM's loop vectoriser turns a Numba table lookup into scalar loads (no
gather) — 2.2x slower than the multiply-adds on DS1 — but with AVX-512 one
``vpermi2pd`` selects 8 patterns' entries from a 16-entry table held in two
registers. This module emits those loops directly as LLVM IR (Numba intrinsics):

``lookup1(out, ta, ca)``            out[i, p]  = ta[i, ca[p]]
``lookup1_mul(out, ta, ca)``        out[i, p] *= ta[i, ca[p]]
``lookup2(out, ta, ca, tb, cb)``    out[i, p]  = ta[i, ca[p]] * tb[i, cb[p]]
``lookup1_matvec(out, ta, ca, xb, pb)``
                                    out[i, p]  = ta[i, ca[p]] * Σ_j pb[i, j] xb[j, p]
``lookup1_matvec_f81(out, ta, ca, xb, pb)``
                                    the same for pb = a I + 1 qᵀ (F81 family), read as
                                    q = (pb[1,0], pb[2,1], pb[3,2], pb[0,3]),
                                    a = pb[0,0] - q_0: Σ_j pb[i,j] xb[j] = a xb[i] + q·xb

The last two fuse a tip child and an internal child of one node (the internal child's
product computed in registers, not stored and reloaded: 2.8 instead of 4.3 µs per
DS1 GTR+Γ4 node).

``out`` (4, P) float64, C-contiguous rows (a row stride is read from the array);
``ta``, ``tb`` (4, 16) float64 C-contiguous; ``ca``, ``cb`` (P,) uint8 codes in 0..15.
Without AVX-512 (checked against the features Numba compiles for) the same loops are
emitted with scalar loads, which is correct everywhere and what LLVM would do anyway.
Codes are masked to 4 bits, so a stray code can never read outside a table.
"""
from __future__ import annotations

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

_F64 = ir.DoubleType()
_I64 = ir.IntType(64)
_I8 = ir.IntType(8)
_V8F = ir.VectorType(_F64, 8)
_V8I = ir.VectorType(_I64, 8)
_V8B = ir.VectorType(_I8, 8)
_PERMUTE = "llvm.x86.avx512.vpermi2var.pd.512"


def _has_avx512(context) -> bool:
    """Whether the code Numba generates here may use AVX-512F instructions."""
    codegen = context.codegen()
    features = getattr(codegen, "_tm_features", None)
    if features is None:
        try:
            features = codegen._get_host_cpu_features()
        except Exception:  # pragma: no cover - very old Numba
            return False
    return "+avx512f" in features.split(",")


def _target_has_avx512() -> bool:
    from numba.core.registry import cpu_target
    try:
        return _has_avx512(cpu_target.target_context)
    except Exception:  # pragma: no cover
        return False


#: Whether the pruning kernels look tips up (AVX-512 permutes) or multiply indicator
#: rows. Without AVX-512 the lookup is scalar loads, slower than the indicator
#: multiply-adds, which vectorise with AVX2 (DS1, Numba compiling for an AVX2-only
#: target on this Zen 4: JC69 45 µs with lookups vs 33 µs with indicator rows, GTR+Γ4
#: 230 vs 160 µs; with AVX-512 and lookups: 24 and 95 µs).
#: A module constant, so Numba compiles only the chosen branch; the disk cache is
#: keyed on the CPU's features, so a cache never crosses machines.
TIP_LOOKUP: bool = _target_has_avx512()


def _array_args(sig, args, context, builder):
    return [context.make_array(t)(context, builder, a) for t, a in zip(sig.args, args)]


def _row_ptr(builder, data, stride_bytes, i):
    """double* to row i of a 2-D array with the given row stride (bytes)."""
    base = builder.ptrtoint(data, _I64)
    off = builder.mul(stride_bytes, ir.Constant(_I64, i))
    return builder.inttoptr(builder.add(base, off), _F64.as_pointer())


def _splat(builder, x):
    v = builder.insert_element(ir.Constant(_V8F, ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(v, ir.Constant(_V8F, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), 8), [0] * 8))


def _matvec_rows(builder, fma, xs, mat, f81: bool):
    """[Σ_j m[i][j] xs[j]]_i (general) or [a xs[i] + q·xs]_i (F81) for 4 values
    (vectors or scalars); ``mat[i][j]`` the matrix entries (same kind as xs)."""
    if f81:
        q = [mat[1][0], mat[2][1], mat[3][2], mat[0][3]]
        a = builder.fsub(mat[0][0], mat[1][0])
        sq = builder.fmul(q[0], xs[0])
        for j in range(1, 4):
            sq = fma(q[j], xs[j], sq)
        return [fma(a, xs[i], sq) for i in range(4)]
    res = []
    for i in range(4):
        acc = builder.fmul(mat[i][0], xs[0])
        for j in range(1, 4):
            acc = fma(mat[i][j], xs[j], acc)
        res.append(acc)
    return res


def _emit_lookup(context, builder, sig, args, n_tables: int, multiply: bool,
                 matvec: str = ""):
    arrs = _array_args(sig, args, context, builder)
    out = arrs[0]
    tables = [arrs[1 + 2 * k] for k in range(n_tables)]
    codes = [arrs[2 + 2 * k] for k in range(n_tables)]
    n = cgutils.unpack_tuple(builder, out.shape, 2)[1]
    out_stride = cgutils.unpack_tuple(builder, out.strides, 2)[0]
    out_rows = [_row_ptr(builder, out.data, out_stride, i) for i in range(4)]
    if matvec:
        xb, pb = arrs[1 + 2 * n_tables], arrs[2 + 2 * n_tables]
        xb_stride = cgutils.unpack_tuple(builder, xb.strides, 2)[0]
        xb_rows = [_row_ptr(builder, xb.data, xb_stride, j) for j in range(4)]
        pb_s = [[builder.load(builder.gep(pb.data, [ir.Constant(_I64, 4 * i + j)]))
                 for j in range(4)] for i in range(4)]
    # table rows: (4, 16) C-contiguous, row i at element 16 i
    tab_rows = [[builder.gep(t.data, [ir.Constant(_I64, 16 * i)]) for i in range(4)]
                for t in tables]
    code_ptrs = [c.data for c in codes]
    fifteen = ir.Constant(_I8, 15)

    done = ir.Constant(_I64, 0)
    if _has_avx512(context):
        fnty = ir.FunctionType(_V8F, [_V8F, _V8I, _V8F])
        permute = cgutils.get_or_insert_function(builder.module, fnty, _PERMUTE)
        vfma_fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_V8F, [_V8F, _V8F, _V8F]), "llvm.fma.v8f64")

        def vfma(a, b, c):
            return builder.call(vfma_fn, [a, b, c])
        if matvec:
            pb_v = [[_splat(builder, x) for x in row] for row in pb_s]
        # the 16-entry tables as (lo, hi) register pairs, loaded once
        regs = []
        for rows_k in tab_rows:
            pairs = []
            for i in range(4):
                lo = builder.load(builder.bitcast(rows_k[i], _V8F.as_pointer()), align=8)
                hi_ptr = builder.gep(rows_k[i], [ir.Constant(_I64, 8)])
                hi = builder.load(builder.bitcast(hi_ptr, _V8F.as_pointer()), align=8)
                pairs.append((lo, hi))
            regs.append(pairs)
        n8 = builder.and_(n, ir.Constant(_I64, -8))
        mask8 = ir.Constant(_V8B, [15] * 8)
        with cgutils.for_range_slice(builder, ir.Constant(_I64, 0), n8,
                                     ir.Constant(_I64, 8), intp=_I64) as (p, _):
            idx = []
            for cp in code_ptrs:
                raw = builder.load(builder.bitcast(builder.gep(cp, [p]), _V8B.as_pointer()),
                                   align=1)
                idx.append(builder.zext(builder.and_(raw, mask8), _V8I))
            if matvec:
                ys = [builder.load(builder.bitcast(builder.gep(xb_rows[j], [p]),
                                                  _V8F.as_pointer()), align=8)
                      for j in range(4)]
                hv = _matvec_rows(builder, vfma, ys, pb_v, matvec == "f81")
            for i in range(4):
                val = None
                for k in range(n_tables):
                    lo, hi = regs[k][i]
                    v = builder.call(permute, [lo, idx[k], hi])
                    val = v if val is None else builder.fmul(val, v)
                if matvec:
                    val = builder.fmul(val, hv[i])
                dst = builder.bitcast(builder.gep(out_rows[i], [p]), _V8F.as_pointer())
                if multiply:
                    val = builder.fmul(builder.load(dst, align=8), val)
                builder.store(val, dst, align=8)
        done = n8
    # scalar loop: the remainder (or everything without AVX-512)
    sfma_fn = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(_F64, [_F64, _F64, _F64]), "llvm.fmuladd.f64")

    def sfma(a, b, c):
        return builder.call(sfma_fn, [a, b, c])
    with cgutils.for_range_slice(builder, done, n, ir.Constant(_I64, 1), intp=_I64) as (p, _):
        idx = [builder.zext(builder.and_(builder.load(builder.gep(cp, [p])), fifteen), _I64)
               for cp in code_ptrs]
        if matvec:
            ys = [builder.load(builder.gep(xb_rows[j], [p])) for j in range(4)]
            hs = _matvec_rows(builder, sfma, ys, pb_s, matvec == "f81")
        for i in range(4):
            val = None
            for k in range(n_tables):
                v = builder.load(builder.gep(tab_rows[k][i], [idx[k]]))
                val = v if val is None else builder.fmul(val, v)
            if matvec:
                val = builder.fmul(val, hs[i])
            dst = builder.gep(out_rows[i], [p])
            if multiply:
                val = builder.fmul(builder.load(dst), val)
            builder.store(val, dst)
    return context.get_dummy_value()


def _is_f64_2d(t) -> bool:
    return isinstance(t, types.Array) and t.ndim == 2 and t.dtype == types.float64


def _is_table(t) -> bool:
    return _is_f64_2d(t) and t.layout == "C"


def _is_codes(t) -> bool:
    return isinstance(t, types.Array) and t.ndim == 1 and t.dtype == types.uint8 and t.layout == "C"


def _check_out(t) -> bool:
    # rows may be strided, elements within a row must be contiguous: layout C only
    return _is_f64_2d(t) and t.layout == "C"


@intrinsic
def lookup1(typingctx, out, ta, ca):
    """out[i, p] = ta[i, ca[p]] for i < 4, p < out.shape[1]."""
    if not (_check_out(out) and _is_table(ta) and _is_codes(ca)):
        return None

    def codegen(context, builder, sig, args):
        return _emit_lookup(context, builder, sig, args, 1, False)
    return types.none(out, ta, ca), codegen


@intrinsic
def lookup1_mul(typingctx, out, ta, ca):
    """out[i, p] *= ta[i, ca[p]] for i < 4, p < out.shape[1]."""
    if not (_check_out(out) and _is_table(ta) and _is_codes(ca)):
        return None

    def codegen(context, builder, sig, args):
        return _emit_lookup(context, builder, sig, args, 1, True)
    return types.none(out, ta, ca), codegen


@intrinsic
def lookup2(typingctx, out, ta, ca, tb, cb):
    """out[i, p] = ta[i, ca[p]] * tb[i, cb[p]] for i < 4, p < out.shape[1]."""
    if not (_check_out(out) and _is_table(ta) and _is_codes(ca) and _is_table(tb)
            and _is_codes(cb)):
        return None

    def codegen(context, builder, sig, args):
        return _emit_lookup(context, builder, sig, args, 2, False)
    return types.none(out, ta, ca, tb, cb), codegen


def _is_matrix(t) -> bool:
    return _is_f64_2d(t) and t.layout == "C"


def _matvec_intrinsic(kind: str):
    def typer(typingctx, out, ta, ca, xb, pb):
        if not (_check_out(out) and _is_table(ta) and _is_codes(ca) and _check_out(xb)
                and _is_matrix(pb)):
            return None

        def codegen(context, builder, sig, args):
            return _emit_lookup(context, builder, sig, args, 1, False, kind)
        return types.none(out, ta, ca, xb, pb), codegen
    return typer


lookup1_matvec = intrinsic(_matvec_intrinsic("gen"))
lookup1_matvec.__doc__ = "out[i, p] = ta[i, ca[p]] * Σ_j pb[i, j] xb[j, p]."
lookup1_matvec_f81 = intrinsic(_matvec_intrinsic("f81"))
lookup1_matvec_f81.__doc__ = "out[i, p] = ta[i, ca[p]] * (a xb[i, p] + q·xb[:, p]), pb = a I + 1 qᵀ."
